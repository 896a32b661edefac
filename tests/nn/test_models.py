import pytest
import torch
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn import MF, LightGCN, MostPopular


def toy_graph():
    train = torch.tensor([[0, 0, 1, 2, 2, 3], [0, 1, 1, 2, 3, 0]])
    test = torch.tensor([[0, 1, 3], [2, 0, 3]])
    return InteractionGraph(4, 4, train, test=test)


def test_lightgcn_matches_pyg_and_dense():
    graph = toy_graph()
    model = LightGCN(num_users=4, num_items=4, embedding_dim=8, num_layers=3)
    ref = PyGLightGCN(8, 8, num_layers=3)
    ref.embedding.weight.data.copy_(model.embedding.weight.data)
    expected = ref.get_embedding(graph.edge_index)
    torch.testing.assert_close(model.get_embedding(graph.edge_index),
                               expected)
    torch.testing.assert_close(model.get_embedding(graph.norm_adj()),
                               expected)
    # Dense reference: mean of A^k x for k = 0..3.
    a = graph.norm_adj().to_dense()
    x = model.embedding.weight.detach()
    dense = sum(torch.linalg.matrix_power(a, k) @ x for k in range(4)) / 4
    torch.testing.assert_close(model.get_embedding(graph.norm_adj()).detach(),
                               dense)
    label = torch.tensor([[0, 1], [4, 6]])
    torch.testing.assert_close(model(graph.edge_index, label),
                               ref(graph.edge_index, label))
    assert str(model) == ('LightGCN(num_users=4, num_items=4, '
                          'embedding_dim=8, num_layers=3)')


def test_lightgcn_gradients_sparse_equal_edge_index():
    graph = toy_graph()
    model = LightGCN(num_users=4, num_items=4, embedding_dim=4, num_layers=2)
    # Node ids: items 1, 3 and 3, 0 are nodes 5, 7 and 7, 4.
    users, pos, neg = torch.tensor([0, 2]), torch.tensor([5, 7]), \
        torch.tensor([7, 4])
    loss, _ = model.training_loss(graph.norm_adj(), users, pos, neg)
    loss.backward()
    g1 = model.embedding.weight.grad.clone()
    model.zero_grad()
    loss2, _ = model.training_loss(graph.edge_index, users, pos, neg)
    loss2.backward()
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(model.embedding.weight.grad, g1)


def test_recommend_excludes_training_items():
    graph = toy_graph()
    rowptr, col = graph.csr('train')
    links = torch.stack([graph.train[0], graph.train[1] + 4])
    for model in (LightGCN(num_users=4, num_items=4, embedding_dim=8,
                           num_layers=2), MF(4, 4, 8)):
        adj = graph.norm_adj()
        top = model.recommend(adj, src_index=torch.arange(4),
                              dst_index=model.item_index, k=4,
                              exclude_links=links)
        out = model.get_embedding(adj).detach()
        for u in range(4):
            seen = set(col[rowptr[u]:rowptr[u + 1]].tolist())
            rec = [i - 4 for i in top[u].tolist() if i >= 0]
            assert not seen & set(rec)
            assert len(rec) == 4 - len(seen)  # every other item, padded
            assert top[u].tolist()[len(rec):] == [-1] * len(seen)
            # Best first, by a naive loop over the candidates.
            score = {i: float(out[u] @ out[4 + i]) for i in range(4)
                     if i not in seen}
            assert rec == sorted(score, key=lambda i: (-score[i], i))
        with pytest.raises(ValueError, match='src_index'):
            model.recommend(adj, src_index=torch.tensor([8]), k=2)
        with pytest.raises(ValueError, match='k must be positive'):
            model.recommend(adj, src_index=torch.tensor([0]), k=0)
    top = MostPopular(graph.item_degree(), 4).recommend(
        torch.arange(4), 4, exclude=graph.csr('train'))
    for u in range(4):
        seen = set(col[rowptr[u]:rowptr[u + 1]].tolist())
        assert not seen & set(top[u].tolist())


def test_most_popular_order_and_ties():
    graph = toy_graph()  # item degrees: 0 -> 2, 1 -> 2, 2 -> 1, 3 -> 1
    model = MostPopular(graph.item_degree(), 4)
    top = model.recommend(torch.tensor([1]), 4)
    assert top.tolist() == [[0, 1, 2, 3]]  # ties by lower item id


def test_model_bad_input():
    with pytest.raises(ValueError, match='layer weights'):
        LightGCN(num_users=3, num_items=3, embedding_dim=4, num_layers=2,
                 alpha=[0.5, 0.5])
    with pytest.raises(ValueError, match='users and items'):
        MF(0, 3)
    with pytest.raises(ValueError, match='both num_users and num_items'):
        LightGCN(num_users=3, embedding_dim=4)
    with pytest.raises(ValueError, match='embedding_dim must be positive'):
        LightGCN(num_users=3, num_items=3, embedding_dim=0)
    with pytest.raises(ValueError, match='num_nodes=7 but'):
        LightGCN(7, num_users=3, num_items=3)
    model = MF(3, 3, 4)
    with pytest.raises(ValueError, match='same length'):
        model.training_loss(None, torch.tensor([0, 1]), torch.tensor([3]),
                            torch.tensor([4]))
    with pytest.raises(ValueError, match='edge_label_index'):
        model(None, torch.tensor([[0], [9]]))


def test_lightgcn_bf16_storage_in_training_only():
    from pyg_recsys.data import InteractionGraph
    g = torch.Generator().manual_seed(3)
    pairs = torch.stack([torch.randint(0, 12, (60, ), generator=g),
                         torch.randint(0, 9, (60, ), generator=g)])
    graph = InteractionGraph(12, 9, pairs.unique(dim=1))
    adj = graph.norm_adj()
    exact = LightGCN(num_users=12, num_items=9, embedding_dim=16, num_layers=3)
    fast = LightGCN(num_users=12, num_items=9, embedding_dim=16, num_layers=3,
                    storage_dtype='bfloat16')
    fast.load_state_dict(exact.state_dict())
    assert fast.storage_dtype is torch.bfloat16
    ref = exact.get_embedding(adj)
    train_out = fast.get_embedding(adj)
    assert not torch.equal(train_out, ref)  # rounded while training
    torch.testing.assert_close(train_out, ref, rtol=2e-2, atol=2e-3)
    fast.eval()
    torch.testing.assert_close(fast.get_embedding(adj), ref)  # exact


def test_hard_negatives_pick_the_top_scored_candidate():
    torch.manual_seed(0)
    num_users, num_items = 5, 7
    model = MF(num_users, num_items, 4)
    users = torch.tensor([0, 3, 4, 3])
    cand = torch.tensor([[1, 2, 6], [0, 5, 5], [3, 4, 2], [6, 1, 0]]) + \
        num_users  # node ids
    final = model.embedding.weight.detach()
    picked = model.hardest_negatives(final, users, cand)
    for b in range(users.numel()):  # naive loop reference
        scores = [float(final[users[b]] @ final[c])
                  for c in cand[b].tolist()]
        assert int(picked[b]) == int(cand[b][scores.index(max(scores))])
    # The loss with hard negatives is the loss of the picked negatives, and
    # the selection passes no gradient to the candidates it dropped.
    pos = torch.tensor([0, 1, 2, 3]) + num_users
    loss, _ = model.training_loss(None, users, pos, cand,
                                  hard_negatives=True)
    ref, _ = model.training_loss(None, users, pos, picked)
    assert torch.allclose(loss, ref)
    loss.backward()
    grad = model.embedding.weight.grad
    used = set(users.tolist()) | set(pos.tolist()) | set(picked.tolist())
    for row in range(num_users + num_items):
        assert (grad[row].abs().sum() > 0) == (row in used)
    with pytest.raises(ValueError, match=r'\[B, M\]'):
        model.hardest_negatives(final, users, cand[:, 0])
