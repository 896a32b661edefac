import math

import pytest
import torch
from graphs import clustered_graph, popularity_recall

from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn.conv import BehaviorConv
from pyg_recsys.nn.loss import (
    cosine_contrastive_loss,
    ranking_loss,
    sampled_softmax_loss,
)
from pyg_recsys.nn.models import SimpleX


# -- losses against per-element loops -----------------------------------------
def naive_ccl(pos, neg, margin, weight):
    total = 0.0
    for b in range(pos.numel()):
        neg_terms = [max(float(s) - margin, 0.0) for s in neg[b]]
        agg = sum(neg_terms) if weight is None else \
            weight * sum(neg_terms) / len(neg_terms)
        total += max(1.0 - float(pos[b]), 0.0) + agg
    return total / pos.numel()


def naive_softmax(pos, neg, tau):
    total = 0.0
    for b in range(pos.numel()):
        den = math.exp(float(pos[b]) / tau) + sum(
            math.exp(float(s) / tau) for s in neg[b])
        total += -math.log(math.exp(float(pos[b]) / tau) / den)
    return total / pos.numel()


@pytest.mark.parametrize('weight', [None, 0.0, 7.5])
def test_ccl_matches_a_loop(weight):
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(6, generator=g, dtype=torch.float64) * 2 - 1
    neg = torch.rand(6, 9, generator=g, dtype=torch.float64) * 2 - 1
    got = cosine_contrastive_loss(pos, neg, margin=0.3, negative_weight=weight)
    assert float(got) == pytest.approx(naive_ccl(pos, neg, 0.3, weight),
                                       rel=1e-12)
    assert float(ranking_loss('ccl', pos, neg, margin=0.3,
                              negative_weight=weight)) == float(got)


def test_ccl_gradient_is_zero_inside_the_margins():
    pos = torch.tensor([1.0, 0.5], requires_grad=True)
    neg = torch.tensor([[0.2, 0.95], [-0.4, 0.1]], requires_grad=True)
    cosine_contrastive_loss(pos, neg, margin=0.9).backward()
    # a perfect positive and negatives below the margin pass nothing
    assert pos.grad.tolist() == [0.0, -0.5]
    assert neg.grad.tolist() == [[0.0, 0.5], [0.0, 0.0]]


def test_losses_with_a_negative_mask_match_loops_over_the_kept_negatives():
    g = torch.Generator().manual_seed(4)
    pos = torch.rand(5, generator=g, dtype=torch.float64) * 2 - 1
    neg = torch.rand(5, 7, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.rand(5, 7, generator=g) < 0.6
    mask[2] = False  # a row without negatives keeps its positive term
    kept = [[float(s) for s, m in zip(neg[b], mask[b]) if m]
            for b in range(5)]
    for weight in (None, 4.0):
        want = 0.0
        for b in range(5):
            terms = [max(s - 0.3, 0.0) for s in kept[b]]
            agg = sum(terms) if weight is None else \
                (weight * sum(terms) / len(terms) if terms else 0.0)
            want += max(1.0 - float(pos[b]), 0.0) + agg
        got = ranking_loss('ccl', pos, neg, margin=0.3,
                           negative_weight=weight, neg_mask=mask)
        assert float(got) == pytest.approx(want / 5, rel=1e-12)
    want = sum(-math.log(math.exp(float(pos[b]) / 0.5) / (
        math.exp(float(pos[b]) / 0.5)
        + sum(math.exp(s / 0.5) for s in kept[b]))) for b in range(5)) / 5
    got = ranking_loss('softmax', pos, neg, temperature=0.5, neg_mask=mask)
    assert float(got) == pytest.approx(want, rel=1e-12)
    pairs = [math.log1p(math.exp(s - float(pos[b])))
             for b in range(5) for s in kept[b]]
    got = ranking_loss('bpr', pos, neg, neg_mask=mask)
    assert float(got) == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)
    with pytest.raises(ValueError, match='neg_mask'):
        ranking_loss('ccl', pos, neg, neg_mask=mask[:, :3])


@pytest.mark.parametrize('tau', [1.0, 0.1])
def test_sampled_softmax_matches_a_loop(tau):
    g = torch.Generator().manual_seed(1)
    pos = torch.randn(5, generator=g, dtype=torch.float64)
    neg = torch.randn(5, 4, generator=g, dtype=torch.float64)
    got = sampled_softmax_loss(pos, neg, temperature=tau)
    assert float(got) == pytest.approx(naive_softmax(pos, neg, tau),
                                       rel=1e-12)


def test_losses_name_bad_input():
    with pytest.raises(ValueError, match='unknown loss'):
        ranking_loss('hinge', torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r'\[B\] or \[B, M\]'):
        cosine_contrastive_loss(torch.zeros(3), torch.zeros(2, 4))


# -- the aggregation layer against per-user loops -----------------------------
def history_graph():
    x_src = torch.randn(6, 4, generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
    x_dst = torch.randn(3, 4, generator=torch.Generator().manual_seed(3),
                        dtype=torch.float64)
    # user 0 has items 1, 4, 5; user 1 has item 0; user 2 has none
    edge_index = torch.tensor([[1, 4, 5, 0], [0, 0, 0, 1]])
    return x_src, x_dst, edge_index


def ref_behavior(conv, x_src, x_dst, edge_index):
    out = []
    for u in range(x_dst.size(0)):
        items = [int(i) for i, t in zip(*edge_index) if int(t) == u]
        if not items:
            out.append(torch.zeros(x_src.size(1), dtype=x_src.dtype))
            continue
        if conv.aggregator == 'mean':
            weights = [1.0 / len(items)] * len(items)
        else:
            logits = [float(torch.tanh(conv.lin_k(x_src[i])) @ x_dst[u])
                      for i in items]
            z = sum(math.exp(v) for v in logits)
            weights = [math.exp(v) / z for v in logits]
        pooled = sum(w * x_src[i] for w, i in zip(weights, items))
        out.append(conv.lin_v.weight @ pooled)
    return torch.stack(out)


@pytest.mark.parametrize('aggregator', ['mean', 'user_attention'])
def test_behavior_conv_matches_a_loop(aggregator):
    x_src, x_dst, edge_index = history_graph()
    conv = BehaviorConv(4, aggregator).double()
    got = conv((x_src, x_dst), edge_index)
    torch.testing.assert_close(got, ref_behavior(conv, x_src, x_dst,
                                                 edge_index))
    # the same through a sparse adj_t [users, items]
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0),
                                    torch.ones(4, dtype=torch.float64),
                                    (3, 6)).to_sparse_csr()
    torch.testing.assert_close(conv((x_src, x_dst), adj_t), got)
    x_src.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: conv((x, x_dst), edge_index), (x_src, ))


def test_behavior_conv_names_bad_options():
    with pytest.raises(ValueError, match='aggregator'):
        BehaviorConv(4, 'max')
    x_src, _, edge_index = history_graph()
    with pytest.raises(ValueError, match='users'):
        BehaviorConv(4, 'user_attention').double()((x_src, None), edge_index)


# -- the model ----------------------------------------------------------------
def small_graph():
    train = torch.tensor([[0, 0, 0, 1, 2, 2, 3], [1, 4, 5, 0, 2, 3, 5]])
    return InteractionGraph(5, 6, train)


def ref_user(model, graph, u):
    e = model.embedding.weight
    items = graph.train[1][graph.train[0] == u].tolist()
    e_u = e[u]
    hist = e[model.num_users:] if model.history is None else \
        model.history.weight
    agg = ref_behavior(model.conv, hist, e_u.view(1, -1),
                       torch.tensor([items, [0] * len(items)],
                                    dtype=torch.long))[0]
    v = model.gamma * e_u + (1 - model.gamma) * agg
    return v / v.norm()


@pytest.mark.parametrize('aggregator', ['mean', 'user_attention'])
@pytest.mark.parametrize('share', [True, False])
def test_simplex_user_vectors_match_the_formula(aggregator, share):
    graph = small_graph()
    torch.manual_seed(0)
    model = SimpleX(5, 6, 4, aggregator=aggregator, gamma=0.3,
                    share_history=share, init_std=0.5).double().eval()
    for adj in (graph.norm_adj(torch.float64), graph.edge_index):
        out = model.get_embedding(adj)
        for u in range(5):
            torch.testing.assert_close(out[u], ref_user(model, graph, u))
        items = model.embedding.weight[5:]
        torch.testing.assert_close(out[5:], items / items.norm(dim=-1,
                                                               keepdim=True))
    # the batch path gives the table's rows, repeated ids included
    idx = torch.tensor([3, 9, 0, 3, 5, 10])
    torch.testing.assert_close(
        model.embedding_rows(graph.norm_adj(torch.float64), idx), out[idx])


def test_simplex_ccl_loss_matches_a_loop_with_shared_negatives():
    graph = small_graph()
    torch.manual_seed(1)
    model = SimpleX(5, 6, 4, aggregator='user_attention', gamma=0.5,
                    init_std=0.5).double().eval()
    adj = graph.norm_adj(torch.float64)
    users, pos = torch.tensor([0, 2, 2]), torch.tensor([6, 7, 8])
    neg = torch.tensor([[5, 9, 10, 8]])  # shared by the batch
    loss, parts = model.training_loss(adj, users, pos, neg, lambda_reg=0.0,
                                      loss='ccl',
                                      loss_kwargs={'margin': 0.1,
                                                   'negative_weight': 3.0})
    table = model.get_embedding(adj)
    ps = torch.stack([table[u] @ table[p] for u, p in zip(users, pos)])
    ns = torch.stack([torch.stack([table[u] @ table[j] for j in neg[0]])
                      for u in users])
    assert float(loss) == pytest.approx(naive_ccl(ps, ns, 0.1, 3.0),
                                        rel=1e-10)
    assert parts['bpr'] == pytest.approx(float(loss))
    # per-triple negatives [B, M] score against their own rows
    neg = torch.tensor([[5, 9], [10, 8], [9, 9]])
    loss, _ = model.training_loss(adj, users, pos, neg, lambda_reg=0.0,
                                  loss='softmax',
                                  loss_kwargs={'temperature': 0.5})
    ns = torch.stack([torch.stack([table[u] @ table[j] for j in row])
                      for u, row in zip(users, neg)])
    assert float(loss) == pytest.approx(naive_softmax(ps, ns, 0.5),
                                        rel=1e-10)


def test_simplex_gamma_one_is_cosine_mf():
    graph = small_graph()
    model = SimpleX(5, 6, 4, gamma=1.0, init_std=0.5).eval()
    out = model.get_embedding(graph.norm_adj())
    w = model.embedding.weight
    torch.testing.assert_close(out, w / w.norm(dim=-1, keepdim=True))


def test_simplex_biases_score_as_the_formula():
    graph = small_graph()
    torch.manual_seed(2)
    model = SimpleX(5, 6, 4, gamma=0.4, init_std=0.5, bias=True).double()
    with torch.no_grad():
        model.global_bias.fill_(0.25)
    adj = graph.norm_adj(torch.float64)
    model.eval()
    table = model.get_embedding(adj)
    assert table.shape == (11, 6)
    b_u, b_i = model.user_bias.weight[:, 0], model.item_bias.weight[:, 0]
    for u in range(5):
        for i in range(6):
            e_i = model.embedding.weight[5 + i]
            want = ref_user(model, graph, u) @ (e_i / e_i.norm()) + b_i[i] \
                + b_u[u] + 0.25
            assert float(table[u] @ table[5 + i]) == pytest.approx(
                float(want), rel=1e-12)
    # training: dropout covers the user vector and the item bias's constant
    # feature, not the user and global biases
    model.train()
    model.dropout = 0.5
    torch.manual_seed(3)
    users = torch.tensor([0, 0, 2, 2, 2, 3] * 20)
    rows = model.user_vectors(adj, users)
    kept = rows[:, :5]
    ref = table[users, :5]
    assert bool(((kept == 0) | torch.isclose(kept, 2 * ref)).all())
    assert 0 < int((kept[:, 4] == 0).sum()) < users.numel()
    torch.testing.assert_close(rows[:, 5], b_u[users] + 0.25)


def test_simplex_names_bad_options():
    with pytest.raises(ValueError, match='gamma'):
        SimpleX(3, 3, gamma=1.5)
    with pytest.raises(ValueError, match='similarity'):
        SimpleX(3, 3, similarity='euclid')
    with pytest.raises(ValueError, match='dropout'):
        SimpleX(3, 3, dropout=1.0)
    with pytest.raises(ValueError, match='interaction graph'):
        SimpleX(3, 3).get_embedding(None)


def test_simplex_trains_through_the_trainer_and_beats_popularity():
    from pyg_recsys.train import TrainConfig, Trainer
    graph = clustered_graph()
    cfg = TrainConfig(epochs=40, batch_size=32, lr=1e-2, loss='ccl',
                      margin=0.5, negative_weight=10.0, num_negatives=20,
                      shared_negatives=True, eval_every=40, select='last',
                      monitor='recall@10', lambda_reg=0.0)
    torch.manual_seed(0)
    model = SimpleX(graph.num_users, graph.num_items, 16, gamma=0.5,
                    dropout=0.0, init_std=0.1)
    report = Trainer(model, graph, cfg, progress=False).fit()
    assert report['test']['recall@10'] > 1.5 * popularity_recall(graph)
