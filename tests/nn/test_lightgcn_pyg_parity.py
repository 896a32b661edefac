r"""pyg_recsys.nn.models.LightGCN against torch_geometric's LightGCN on the
same weights: every call the two share gives the same answer."""
import pytest
import torch
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn.models import LightGCN


def bipartite(num_users=9, num_items=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.stack([torch.randint(0, num_users, (30, ), generator=g),
                         torch.randint(0, num_items, (30, ), generator=g)])
    return InteractionGraph(num_users, num_items, pairs.unique(dim=1))


def twins(num_nodes, dim=8, layers=3, alpha=None, **kwargs):
    torch.manual_seed(0)
    ours = LightGCN(num_nodes, dim, layers, alpha, **kwargs)
    ref = PyGLightGCN(num_nodes, dim, layers, alpha)
    ref.embedding.weight.data.normal_()
    ours.embedding.weight.data.copy_(ref.embedding.weight.data)
    return ours, ref


def inputs(graph, device='cpu'):
    r"""The graph as PyG sees it, and the same graph in each form a user
    may pass: (name, ours, pyg's, edge_weight), on :obj:`device`."""
    ei = graph.edge_index
    n = graph.num_nodes
    g = torch.Generator().manual_seed(1)
    w = torch.rand(ei.size(1), generator=g) + 0.5
    coo = torch.sparse_coo_tensor(ei, w, (n, n)).coalesce()
    # A symmetric normalisation a user computed by hand: not marked, so
    # both models normalise it again, as LGConv does with any sparse input.
    deg = torch.zeros(n).index_add_(0, ei[0], torch.ones(ei.size(1)))
    dinv = deg.pow(-0.5).masked_fill(deg == 0, 0)
    norm = torch.sparse_coo_tensor(ei, dinv[ei[0]] * dinv[ei[1]],
                                   (n, n)).coalesce().to_sparse_csr()
    cases = [
        ('edge_index', ei, ei, None),
        ('edge_index+weight', ei, ei, w),
        ('sparse_csr', coo.to_sparse_csr(), coo.to_sparse_csr(), None),
        ('sparse_coo', coo, coo, None),
        ('hand-normalised csr', norm, norm, None),
        # The package's marked adjacency is normalised already: it equals
        # PyG normalising the plain edge_index.
        ('norm_adj', graph.norm_adj(), ei, None),
    ]
    if device == 'cpu':
        return cases
    adj = graph.norm_adj(device=device)
    return [(name, adj if name == 'norm_adj' else a.to(device), b.to(device),
             None if w is None else w.to(device))
            for name, a, b, w in cases]


def test_pyg_positional_constructor():
    model = LightGCN(1000, 64, 3)
    ref = PyGLightGCN(1000, 64, 3)
    assert model.num_nodes == 1000 and model.num_users is None
    assert tuple(model.embedding.weight.shape) == (1000, 64)
    assert len(model.convs) == 3
    assert str(model) == str(ref) == 'LightGCN(1000, 64, num_layers=3)'
    torch.testing.assert_close(model.alpha, ref.alpha)
    alpha = torch.tensor([0.4, 0.3, 0.2, 0.1])
    torch.testing.assert_close(LightGCN(10, 4, 3, alpha).alpha, alpha)
    with pytest.raises(ValueError, match='split users from items'):
        model.split_embedding(model.embedding.weight)


@pytest.mark.parametrize('case', range(6))
def test_embeddings_scores_and_links(case, device):
    graph = bipartite()
    ours, ref = twins(graph.num_nodes, alpha=torch.tensor(
        [0.1, 0.2, 0.3, 0.4]))
    ours, ref = ours.to(device), ref.to(device)
    name, x_ours, x_ref, w = inputs(graph, device)[case]
    torch.testing.assert_close(ours.get_embedding(x_ours, w),
                               ref.get_embedding(x_ref, w))
    label = torch.tensor([[0, 3, 8, 11], [9, 12, 15, 2]], device=device)
    torch.testing.assert_close(ours(x_ours, label, w), ref(x_ref, label, w))
    for prob in (False, True):
        torch.testing.assert_close(
            ours.predict_link(x_ours, label, w, prob=prob),
            ref.predict_link(x_ref, label, w, prob=prob))
    if name != 'norm_adj':  # default pairs: the edges of the input itself
        torch.testing.assert_close(ours(x_ours, edge_weight=w),
                                   ref(x_ref, edge_weight=w))


@pytest.mark.parametrize('case', range(6))
def test_recommend(case, device):
    graph = bipartite()
    ours, ref = twins(graph.num_nodes)
    ours, ref = ours.to(device), ref.to(device)
    _, x_ours, x_ref, w = inputs(graph, device)[case]
    src = torch.tensor([0, 4, 2, 4], device=device)  # repeated on purpose
    dst = torch.arange(graph.num_users, graph.num_nodes, device=device)
    for kwargs in ({'src_index': src, 'dst_index': dst, 'k': 3},
                   {'src_index': src, 'k': 5},
                   {'dst_index': dst, 'k': 2},
                   {'k': 1}):
        got = ours.recommend(x_ours, w, **kwargs)
        assert torch.equal(got, ref.recommend(x_ref, w, **kwargs)), kwargs


def test_losses_and_their_gradients():
    graph = bipartite()
    ours, ref = twins(graph.num_nodes)
    ei = graph.edge_index
    label = torch.tensor([[0, 3, 8, 1], [9, 12, 15, 10]])
    edge_label = torch.tensor([1, 0, 1, 1])
    for model in (ours, ref):
        model.zero_grad()
    a = ours.link_pred_loss(ours(ei, label), edge_label)
    b = ref.link_pred_loss(ref(ei, label), edge_label)
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    torch.testing.assert_close(ours.embedding.weight.grad,
                               ref.embedding.weight.grad)

    src = torch.tensor([0, 1, 2])
    pos = torch.tensor([9, 10, 11])
    neg = torch.tensor([14, 15, 9])
    for node_id in (None, torch.cat([src, pos, neg]).unique()):
        for lam in (0.0, 1e-2):
            for model in (ours, ref):
                model.zero_grad()
            losses = []
            for model in (ours, ref):
                pos_rank = model(ei, torch.stack([src, pos]))
                neg_rank = model(ei, torch.stack([src, neg]))
                loss = model.recommendation_loss(pos_rank, neg_rank,
                                                 node_id=node_id,
                                                 lambda_reg=lam)
                loss.backward()
                losses.append(loss)
            torch.testing.assert_close(losses[0], losses[1])
            torch.testing.assert_close(ours.embedding.weight.grad,
                                       ref.embedding.weight.grad)


def test_bipartite_model_matches_pyg_too():
    graph = bipartite()
    torch.manual_seed(0)
    ours = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                    embedding_dim=8, num_layers=2)
    ref = PyGLightGCN(graph.num_nodes, 8, 2)
    ref.embedding.weight.data.copy_(ours.embedding.weight.data)
    torch.testing.assert_close(ours.get_embedding(graph.norm_adj()),
                               ref.get_embedding(graph.edge_index))
    got = ours.recommend(graph.norm_adj(), src_index=torch.arange(3),
                         dst_index=ours.item_index, k=4)
    assert torch.equal(got, ref.recommend(graph.edge_index,
                                          src_index=torch.arange(3),
                                          dst_index=ours.item_index, k=4))
    users, items = ours.split_embedding(ours.get_embedding(graph.norm_adj()))
    assert users.size(0) == graph.num_users
    assert items.size(0) == graph.num_items
