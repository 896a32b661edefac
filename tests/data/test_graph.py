import pytest
import torch

from pyg_recsys.data import InteractionGraph


def graph():
    train = torch.tensor([[0, 0, 1, 2, 2], [0, 2, 1, 1, 3]])
    valid = torch.tensor([[1], [3]])
    test = torch.tensor([[0, 2], [1, 0]])
    return InteractionGraph(4, 4, train, valid, test, name='toy')


def test_norm_adj_against_dense():
    g = graph()
    n = g.num_nodes
    a = torch.zeros(n, n, dtype=torch.float64)
    for u, i in g.train.t().tolist():
        a[u, 4 + i] = a[4 + i, u] = 1.0
    deg = a.sum(1)
    dinv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    expected = dinv.view(-1, 1) * a * dinv.view(1, -1)  # user 3 is isolated
    adj = g.norm_adj(torch.float64)
    assert adj.layout == torch.sparse_csr
    assert adj.crow_indices().dtype == torch.int64
    torch.testing.assert_close(adj.to_dense(), expected)
    assert g.norm_adj(torch.float64) is adj  # cached


def test_data_and_hetero_round_trips():
    g = graph()
    data = g.to_data()
    assert data.num_nodes == 8 and data.edge_index.size(1) == 10
    back = InteractionGraph.from_data(data)
    for split in ('train', 'valid', 'test'):
        assert torch.equal(getattr(back, split), getattr(g, split))
    hetero = g.to_hetero_data()
    assert hetero['user'].num_nodes == 4 and hetero['item'].num_nodes == 4
    assert torch.equal(hetero['item', 'rev_to', 'user'].edge_index,
                       g.train.flip(0))
    back = InteractionGraph.from_hetero_data(hetero)
    for split in ('train', 'valid', 'test'):
        assert torch.equal(getattr(back, split), getattr(g, split))


def test_csr_degrees_and_repr():
    g = graph()
    rowptr, col = g.csr('train')
    assert rowptr.tolist() == [0, 2, 3, 5, 5]
    assert col.tolist() == [0, 2, 1, 1, 3]
    assert g.user_degree().tolist() == [2, 1, 2, 0]
    assert g.item_degree().tolist() == [1, 2, 1, 1]
    assert repr(g) == ("InteractionGraph('toy', num_users=4, num_items=4, "
                       "train=5, valid=1, test=2)")
    with pytest.raises(ValueError, match="unknown split"):
        g.split('other')


def test_graph_bad_input():
    with pytest.raises(ValueError, match='shape'):
        InteractionGraph(2, 2, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match='integer'):
        InteractionGraph(2, 2, torch.tensor([[0.0], [1.0]]))
    with pytest.raises(ValueError, match='empty'):
        InteractionGraph(2, 2, torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match='at least one user'):
        InteractionGraph(0, 2, torch.zeros(2, 0, dtype=torch.long))
    data = graph().to_data()
    data.edge_index = torch.tensor([[0], [1]])  # user-user edge
    with pytest.raises(ValueError, match='inside the user or item block'):
        InteractionGraph.from_data(data)
