import math

import pytest
import torch
from graphs import clustered_graph, popularity_recall

import pyg_recsys.nn.models.ultragcn as ultragcn_module
from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn.loss import constraint_bce_loss, item_item_constraint_loss
from pyg_recsys.nn.models import UltraGCN, build_model
from pyg_recsys.nn.models.ultragcn import item_item_neighbors


def softplus(x):
    return math.log1p(math.exp(x))


# -- losses against loops ------------------------------------------------------
def test_constraint_bce_loss_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(5, generator=g, dtype=torch.float64)
    neg = torch.randn(5, 3, generator=g, dtype=torch.float64)
    pw = torch.rand(5, generator=g, dtype=torch.float64)
    nw = torch.rand(5, 3, generator=g, dtype=torch.float64)
    want = 0.0
    for b in range(5):
        # BCE with logits: label 1 -> -log sigmoid(s), label 0 -> -log(1 - .)
        want += pw[b] * -math.log(1 / (1 + math.exp(-pos[b])))
        want += 7.0 * sum(nw[b, j] * -math.log(1 - 1 / (1 + math.exp(
            -neg[b, j]))) for j in range(3)) / 3
    got = constraint_bce_loss(pos, neg, pw, nw, negative_weight=7.0)
    assert float(got) == pytest.approx(float(want), rel=1e-12)
    # unweighted: weights of one
    assert float(constraint_bce_loss(pos, neg)) == pytest.approx(
        sum(softplus(-float(p)) for p in pos) +
        float(torch.nn.functional.softplus(neg).mean(1).sum()), rel=1e-12)


def test_item_item_constraint_loss_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    score = torch.randn(4, 2, generator=g, dtype=torch.float64)
    w = torch.rand(4, 2, generator=g, dtype=torch.float64)
    want = sum(-float(w[b, k]) * math.log(1 / (1 + math.exp(-score[b, k])))
               for b in range(4) for k in range(2))
    assert float(item_item_constraint_loss(score, w)) == pytest.approx(
        want, rel=1e-12)
    with pytest.raises(ValueError, match='differ in shape'):
        item_item_constraint_loss(score, w[:, :1])


# -- the item-item graph against the dense formula -----------------------------
def dense_omega(users, items, U, I, exclude_self=False):
    R = torch.zeros(U, I, dtype=torch.float64)
    R[users, items] = 1.0
    G = R.t() @ R
    if exclude_self:
        G.fill_diagonal_(0.0)
    g = G.sum(1)  # after the diagonal is zeroed, as UltraGCN's code does
    omega = torch.zeros(I, I, dtype=torch.float64)
    for i in range(I):
        for j in range(I):
            if G[i, j] > 0:
                omega[i, j] = G[i, j] / g[i] * math.sqrt((g[i] + 1) /
                                                          (g[j] + 1))
    return omega


@pytest.mark.parametrize('exclude_self', [False, True])
@pytest.mark.parametrize('block_entries', [1 << 23, 7])
def test_item_item_neighbors_match_the_dense_formula(monkeypatch,
                                                     exclude_self,
                                                     block_entries):
    monkeypatch.setattr(ultragcn_module, '_BLOCK_ENTRIES', block_entries)
    graph = clustered_graph()
    users, items = graph.train
    # a duplicate pair counts once; the last item has no interactions
    users = torch.cat([users, users[:1]])
    items = torch.cat([items, items[:1]])
    U, I, k = graph.num_users, graph.num_items + 1, 4
    index, weight = item_item_neighbors(users, items, U, I, k,
                                        exclude_self=exclude_self)
    omega = dense_omega(users, items, U, I, exclude_self)
    assert index.shape == weight.shape == (I, k)
    for i in range(I):
        want = torch.sort(omega[i], descending=True).values[:k]
        torch.testing.assert_close(weight[i].double(), want, rtol=1e-6,
                                   atol=0.0)
        for j, w in zip(index[i].tolist(), weight[i].tolist()):
            if w > 0:  # each neighbour carries its own weight
                assert omega[i, j] == pytest.approx(w, rel=1e-6)
    assert (weight[-1] == 0).all() and (index[-1] == I - 1).all()
    if not exclude_self:  # the diagonal is kept, as in UltraGCN's code
        assert (index[:, 0] == torch.arange(I))[:-1].any()


def test_item_item_neighbors_name_bad_input():
    with pytest.raises(ValueError, match='k must be positive'):
        item_item_neighbors(torch.tensor([0]), torch.tensor([0]), 1, 1, 0)
    with pytest.raises(ValueError, match='out of range'):
        item_item_neighbors(torch.tensor([0]), torch.tensor([5]), 1, 2)


# -- the model's loss against a per-pair loop ----------------------------------
def small_graph():
    train = torch.tensor([[0, 0, 0, 1, 2, 2, 3, 3], [1, 4, 5, 0, 2, 3, 5, 1]])
    return InteractionGraph(4, 6, train)


def naive_loss(model, graph, users, pos, neg, gamma):
    U = model.num_users
    e = model.embedding.weight.detach().double()
    du = torch.bincount(graph.train[0], minlength=U).double()
    di = torch.bincount(graph.train[1], minlength=model.num_items).double()

    def beta(u, i):  # 1/d_u sqrt((d_u + 1) / (d_i + 1))
        return 1 / du[u] * math.sqrt((du[u] + 1) / (di[i] + 1))

    index, omega = item_item_neighbors(*graph.train, U, model.num_items,
                                       model.num_neighbors)
    main = ii = 0.0
    for b, (u, p) in enumerate(zip(users.tolist(), pos.tolist())):
        s = float(e[u] @ e[p])
        main += (model.w1 + model.w2 * beta(u, p - U)) * softplus(-s)
        row = neg[0] if neg.size(0) == 1 else neg[b]
        terms = [(model.w3 + model.w4 * beta(u, j - U)) *
                 softplus(float(e[u] @ e[j])) for j in row.tolist()]
        main += model.negative_weight * sum(terms) / len(terms)
        for j, w in zip(index[p - U].tolist(), omega[p - U].tolist()):
            ii += w * softplus(-float(e[u] @ e[j + U]))
    return (float(main), model.ii_weight * float(ii),
            0.5 * gamma * float(e.pow(2).sum()))


@pytest.mark.parametrize('shared', [False, True])
def test_ultragcn_loss_matches_a_loop(shared):
    graph = small_graph()
    torch.manual_seed(0)
    model = build_model('ultragcn', graph, embedding_dim=4, num_neighbors=3,
                        w1=0.1, w2=0.7, w3=0.2, w4=0.9, negative_weight=5.0,
                        ii_weight=0.3, init_std=0.5)
    users, pos = torch.tensor([0, 2, 3]), torch.tensor([5, 6, 9])
    neg = torch.tensor([[4, 8, 7, 9]]) if shared else \
        torch.tensor([[4, 8], [7, 9], [6, 6]])
    total, parts = model.training_loss(graph.norm_adj(), users, pos, neg,
                                       lambda_reg=0.01)
    main, ii, reg = naive_loss(model, graph, users, pos, neg, 0.01)
    assert parts['bpr'] == pytest.approx(main, rel=1e-5)
    assert parts['ii'] == pytest.approx(ii, rel=1e-5)
    assert parts['reg'] == pytest.approx(reg, rel=1e-5)
    assert float(total) == pytest.approx(main + ii + reg, rel=1e-5)
    total.backward()
    assert model.embedding.weight.grad.abs().sum() > 0


def test_ultragcn_takes_its_graph_from_the_training_adjacency():
    graph = small_graph()
    built = build_model('ultragcn', graph, num_neighbors=3)
    lazy = UltraGCN(4, 6, num_neighbors=3)
    lazy.load_state_dict(built.state_dict())
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([5, 4]), \
        torch.tensor([7, 9])
    a, _ = built.training_loss(graph.norm_adj(), users, pos, neg)
    b, _ = lazy.training_loss(graph.norm_adj(), users, pos, neg)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    torch.testing.assert_close(lazy.ii_omega, built.ii_omega)
    # the same pairs through an edge_index of node ids, one direction
    again = UltraGCN(4, 6, num_neighbors=3).set_graph(
        torch.stack([graph.train[0], graph.train[1] + 4]))
    torch.testing.assert_close(again.ii_index, built.ii_index)
    torch.testing.assert_close(again.user_beta, built.user_beta)
    # the constraint is not part of the checkpoint
    assert set(built.state_dict()) == {'embedding.weight'}


def test_ultragcn_names_bad_input():
    graph = small_graph()
    model = build_model('ultragcn', graph)
    with pytest.raises(ValueError, match='own constraint loss'):
        model.training_loss(graph.norm_adj(), torch.tensor([0]),
                            torch.tensor([5]), torch.tensor([6]), loss='ccl')
    with pytest.raises(ValueError, match='num_neighbors'):
        UltraGCN(3, 3, num_neighbors=0)
    with pytest.raises(ValueError, match='negative_weight'):
        UltraGCN(3, 3, negative_weight=-1.0)
    with pytest.raises(ValueError, match='no user-item edges'):
        UltraGCN(3, 3).set_graph(torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match=r'node ids of the graph'):
        UltraGCN(3, 3).set_graph(torch.tensor([[0], [9]]))
    with pytest.raises(ValueError, match="takes no argument 'gamma'"):
        build_model('ultragcn', graph, gamma=1.0)


def test_ultragcn_trains_through_the_trainer_and_beats_popularity():
    from pyg_recsys.train import TrainConfig, Trainer
    graph = clustered_graph()
    cfg = TrainConfig(epochs=30, batch_size=32, lr=1e-2, num_negatives=20,
                      shared_negatives=True, sampler='per_interaction',
                      eval_every=30, select='last', monitor='recall@10', lambda_reg=1e-4)
    torch.manual_seed(0)
    model = build_model('ultragcn', graph, embedding_dim=16,
                        negative_weight=20.0, init_std=0.1)
    report = Trainer(model, graph, cfg, progress=False).fit()
    assert report['test']['recall@10'] > 1.5 * popularity_recall(graph)
