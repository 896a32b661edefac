import math

import pytest
import torch
import torch.nn.functional as F
from graphs import clustered_graph as _clustered

from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn import DCCF
from pyg_recsys.nn.loss import info_nce
from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe


def clustered_graph(seed=0):
    # Users 0-11 like items 0-7, users 12-23 items 8-15.
    return _clustered(seed, users=24, items=16, picks=5, test_part=5,
                      valid=False)

NUM_USERS, NUM_ITEMS = 5, 4
# User 4 has one training edge; item 3 has none.
TRAIN = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3, 4],
                      [0, 1, 1, 2, 0, 0, 1, 2, 2]])
TEST = torch.tensor([[0, 1, 2, 4], [2, 3, 1, 0]])
# A batch with a repeated user and a repeated positive item.
USERS = torch.tensor([0, 3, 0, 4, 1])
POS = torch.tensor([1, 2, 0, 2, 2])
NEG = torch.tensor([3, 3, 2, 1, 0])


def toy_graph():
    return InteractionGraph(NUM_USERS, NUM_ITEMS, TRAIN, test=TEST)


def toy_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs = {'embedding_dim': 6, 'num_layers': 2, 'num_intents': 3,
              **kwargs}
    model = DCCF(NUM_USERS, NUM_ITEMS, **kwargs).double()
    with torch.no_grad():  # keep the toy scores in BPR's non-flat range
        model.embedding.weight.mul_(0.2)
    return model


# ----------------------------------------------------------------------
# An independent dense reference of the DCCF forward pass and loss.

def dense_pattern(graph):
    n = graph.num_users + graph.num_items
    a = torch.zeros(n, n, dtype=torch.float64)
    row, col = graph.edge_index
    a[row, col] = 1.0
    return a


def row_normalised_mask(h, pattern):
    hn = h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
    m = pattern * (hn @ hn.t() + 1) / 2
    s = m.sum(1, keepdim=True)
    return m / torch.where(s > 0, s, torch.ones_like(s))


def dense_forward(x, cu, cv, pattern, num_users, num_layers):
    deg = pattern.sum(1)
    dinv = torch.where(deg > 0, deg.clamp_min(1).pow(-0.5),
                       torch.zeros_like(deg))
    a_hat = dinv.view(-1, 1) * pattern * dinv.view(1, -1)
    layers, e = [], x
    total = x
    for _ in range(num_layers):
        z = a_hat @ e
        r = torch.cat([torch.softmax(e[:num_users] @ cu, 1) @ cu.t(),
                       torch.softmax(e[num_users:] @ cv, 1) @ cv.t()])
        hb = row_normalised_mask(z, pattern) @ e
        hg = row_normalised_mask(r, pattern) @ e
        layers.append((z, r, hb, hg))
        e = e + z + r + hb + hg
        total = total + e
    return total, layers


def loop_info_nce(a, p, tau):
    # The DCCF code's form (cosine, in-batch negatives of the other view)
    # written per anchor, without its 1e-8 guards.
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    p = p / p.norm(dim=1, keepdim=True).clamp_min(1e-12)
    terms = []
    for b in range(a.size(0)):
        num = torch.exp(a[b] @ p[b] / tau)
        den = sum(torch.exp(a[b] @ p[c] / tau) for c in range(a.size(0)))
        terms.append(-torch.log(num / den))
    return torch.stack(terms).mean()


def dense_loss(model, graph, users, pos, neg, lambda_reg, ssl_weight=0.1,
               tau=1.0, proto_reg=5e-3):
    u_num = graph.num_users
    x = model.embedding.weight
    cu, cv = model.user_intents, model.item_intents
    final, layers = dense_forward(x, cu, cv, dense_pattern(graph), u_num,
                                  model.num_layers)
    pos_s = (final[users] * final[u_num + pos]).sum(1)
    neg_s = (final[users] * final[u_num + neg]).sum(1)
    bpr = torch.log1p(torch.exp(neg_s - pos_s)).mean()
    reg = lambda_reg * (x[users].pow(2).sum() + x[u_num + pos].pow(2).sum()
                        + x[u_num + neg].pow(2).sum())
    proto = proto_reg * (cu.pow(2).sum() + cv.pow(2).sum())
    us = torch.tensor(sorted(set(users.tolist())))
    its = torch.tensor(sorted(set(pos.tolist()))) + u_num
    ssl = 0.0
    for z, r, hb, hg in layers:
        for view in (r, hb, hg):
            ssl = ssl + loop_info_nce(z[us], view[us], tau)
            ssl = ssl + loop_info_nce(z[its], view[its], tau)
    ssl = ssl_weight * ssl
    return bpr + reg + proto + ssl, {'bpr': bpr, 'reg': reg, 'proto': proto,
                                     'ssl': ssl}


# ----------------------------------------------------------------------

def test_info_nce_by_hand():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 4, generator=g, dtype=torch.float64)
    p = torch.randn(6, 4, generator=g, dtype=torch.float64)
    for tau in (1.0, 0.2):
        torch.testing.assert_close(info_nce(a, p, tau),
                                   loop_info_nce(a, p, tau))
    # The DCCF code's guarded form differs by less than 1e-8 B e^2.
    an, pn = F.normalize(a, dim=1), F.normalize(p, dim=1)
    pos = torch.exp((an * pn).sum(1))
    den = torch.exp(an @ pn.t()).sum(1)
    guarded = (-torch.log(pos / (den + 1e-8) + 1e-8)).sum() / 6
    assert abs(float(guarded - info_nce(a, p))) < 1e-8 * 6 * math.e ** 2
    # Scale invariant (cosine), and zero-size batches give 0.
    torch.testing.assert_close(info_nce(3 * a, p), info_nce(a, p))
    assert float(info_nce(a[:0], p[:0])) == 0.0
    with pytest.raises(ValueError, match='shape'):
        info_nce(a, p[:3])
    with pytest.raises(ValueError, match='temperature'):
        info_nce(a, p, 0.0)
    with pytest.raises(ValueError, match='chunk_size'):
        info_nce(a, p, 1.0, chunk_size=0)
    # The default block: about 2**22 logits, at least one row.
    from pyg_recsys.nn.loss import _rows_per_block
    assert _rows_per_block(None, 1 << 20, 'f') == 4
    assert _rows_per_block(None, 1 << 30, 'f') == 1
    assert torch.allclose(info_nce(a, p), info_nce(a, p, chunk_size=1))


@pytest.mark.parametrize('chunk', [1, 4, 7, 1024])
def test_info_nce_chunked_values_and_gradients(chunk):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    for tau in (1.0, 0.3):
        value = info_nce(a, p, tau, chunk_size=chunk)
        ref = loop_info_nce(a, p, tau)
        torch.testing.assert_close(value, ref)
        got = torch.autograd.grad(value, (a, p))
        want = torch.autograd.grad(ref, (a, p))
        for x, y in zip(got, want):
            torch.testing.assert_close(x, y)
        assert torch.autograd.gradcheck(
            lambda x, y: info_nce(x, y, tau, chunk_size=chunk), (a, p))
    # Same tensor as both views (gradients add up through both inputs).
    torch.testing.assert_close(
        torch.autograd.grad(info_nce(a, a, chunk_size=chunk), a)[0],
        torch.autograd.grad(loop_info_nce(a, a, 1.0), a)[0])


@pytest.mark.parametrize('chunk', [1, 3, 1024])
def test_info_nce_views_sum_per_view_losses(chunk):
    # [V, B, d] positives: the sum of the V per-view loop losses, values
    # and gradients, one product per block for all views.
    g = torch.Generator().manual_seed(2)
    a = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(3, 5, 4, generator=g, dtype=torch.float64,
                    requires_grad=True)
    value = info_nce(a, p, 0.4, chunk_size=chunk)
    ref = sum(loop_info_nce(a, p[v], 0.4) for v in range(3))
    torch.testing.assert_close(value, ref)
    for x, y in zip(torch.autograd.grad(value, (a, p)),
                    torch.autograd.grad(ref, (a, p))):
        torch.testing.assert_close(x, y)
    assert torch.autograd.gradcheck(
        lambda x, y: info_nce(x, y, 0.4, chunk_size=chunk), (a, p))
    with pytest.raises(ValueError, match='shape'):
        info_nce(a, p[:, :4])


@pytest.mark.parametrize('kwargs', [
    {},
    {'ssl_weight': 0.3, 'temperature': 0.5, 'proto_reg': 1e-2},
])
def test_dccf_loss_matches_dense_reference(kwargs):
    graph = toy_graph()
    model = toy_model(**kwargs)
    lam = 2.5e-3  # larger than the default so that the term is visible
    loss, parts = model.training_loss(
        graph.norm_adj(dtype=torch.float64), USERS, POS + NUM_USERS,
        NEG + NUM_USERS, lam, 'dccf')
    ref, ref_parts = dense_loss(
        model, graph, USERS, POS, NEG, lam,
        ssl_weight=kwargs.get('ssl_weight', 0.1),
        tau=kwargs.get('temperature', 1.0),
        proto_reg=kwargs.get('proto_reg', 5e-3))
    torch.testing.assert_close(loss, ref)
    assert set(parts) == {'bpr', 'reg', 'proto', 'ssl'}
    for key, value in ref_parts.items():
        assert parts[key] == pytest.approx(float(value), rel=1e-10), key
        assert float(value) > 0
    assert sum(parts.values()) == pytest.approx(float(loss), rel=1e-12)
    # Gradients of the full loss w.r.t. embeddings and prototypes.
    params = [model.embedding.weight, model.user_intents, model.item_intents]
    got = torch.autograd.grad(loss, params)
    expected = torch.autograd.grad(ref, params)
    for g, e in zip(got, expected):
        assert e.abs().sum() > 0
        torch.testing.assert_close(g, e)


def test_dccf_edge_index_equals_sparse_and_several_negatives():
    graph = toy_graph()
    model = toy_model()
    adj = graph.norm_adj(dtype=torch.float64)
    torch.testing.assert_close(model.get_embedding(graph.edge_index),
                               model.get_embedding(adj))
    neg2 = torch.stack([NEG, torch.tensor([2, 0, 3, 3, 3])], dim=1)
    for neg in (NEG, neg2):
        loss1, _ = model.training_loss(
        adj, USERS, POS + NUM_USERS, neg + NUM_USERS)
        g1 = torch.autograd.grad(loss1, model.embedding.weight)[0]
        loss2, _ = model.training_loss(
        graph.edge_index, USERS, POS + NUM_USERS, neg + NUM_USERS)
        g2 = torch.autograd.grad(loss2, model.embedding.weight)[0]
        torch.testing.assert_close(loss1, loss2)
        torch.testing.assert_close(g1, g2)
    # M negatives per positive: BPR averages over all B * M pairs.
    final = model.get_embedding(adj).detach()
    u, p = final[USERS], final[NUM_USERS + POS]
    n = final[NUM_USERS + neg2]
    bpr = F.softplus((u.unsqueeze(1) * n).sum(-1) -
                     (u * p).sum(-1, keepdim=True)).mean()
    _, parts = model.training_loss(
        adj, USERS, POS + NUM_USERS, neg2 + NUM_USERS)
    assert parts['bpr'] == pytest.approx(float(bpr), rel=1e-10)


def test_dccf_float32_default_adjacency():
    # The Trainer's setting: float32 model, float32 cached adjacency.
    graph = toy_graph()
    torch.manual_seed(0)
    model = DCCF(NUM_USERS, NUM_ITEMS, embedding_dim=6, num_intents=3)
    model64 = toy_model()
    model64.load_state_dict(model.state_dict())
    loss, _ = model.training_loss(
        graph.norm_adj(), USERS, POS + NUM_USERS, NEG + NUM_USERS)
    loss64, _ = model64.training_loss(
        graph.norm_adj(dtype=torch.float64), USERS, POS + NUM_USERS, NEG + NUM_USERS)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), loss64, rtol=1e-4, atol=1e-5)


def test_dccf_init_and_intent_weights():
    model = DCCF(2000, 500, embedding_dim=32, num_layers=2, num_intents=128)
    w = model.embedding.weight.detach()
    assert float(w[:2000].std()) == pytest.approx(math.sqrt(2 / 2032),
                                                  rel=0.05)
    assert float(w[2000:].std()) == pytest.approx(math.sqrt(2 / 532),
                                                  rel=0.05)
    for c in (model.user_intents, model.item_intents):
        assert c.shape == (32, 128)
        assert float(c.detach().std()) == pytest.approx(math.sqrt(2 / 160),
                                                        rel=0.1)
    graph = toy_graph()
    model = toy_model()
    weights = model.intent_weights(graph.norm_adj(dtype=torch.float64))
    assert len(weights) == 2
    x = model.embedding.weight.detach()
    torch.testing.assert_close(
        weights[0][0], torch.softmax(x[:NUM_USERS] @ model.user_intents, 1))
    for uw, iw in weights:
        assert uw.shape == (NUM_USERS, 3) and iw.shape == (NUM_ITEMS, 3)
        assert not uw.requires_grad
        torch.testing.assert_close(uw.sum(1), torch.ones(NUM_USERS,
                                                         dtype=uw.dtype))
        torch.testing.assert_close(iw.sum(1), torch.ones(NUM_ITEMS,
                                                         dtype=iw.dtype))
    assert str(model) == ('DCCF(5, 4, embedding_dim=6, num_layers=2, '
                          'num_intents=3)')


def test_dccf_training_steps_reduce_loss():
    graph = toy_graph()
    model = toy_model()
    adj = graph.norm_adj(dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss, _ = model.training_loss(
        adj, USERS, POS + NUM_USERS, NEG + NUM_USERS)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]
    # Scores and recommendations come from the trained embeddings.
    links = torch.stack([graph.train[0], graph.train[1] + NUM_USERS])
    top = model.recommend(adj, src_index=torch.arange(NUM_USERS),
                          dst_index=model.item_index, k=2,
                          exclude_links=links)
    rowptr, col = graph.csr('train')
    for u in range(NUM_USERS):
        seen = set(col[rowptr[u]:rowptr[u + 1]].tolist())
        assert not seen & {i - NUM_USERS for i in top[u].tolist() if i >= 0}
    label = torch.tensor([[0, 1], [5, 7]])
    final = model.get_embedding(adj)
    torch.testing.assert_close(model(adj, label),
                               (final[[0, 1]] * final[[5, 7]]).sum(-1))


def test_dccf_bad_input():
    with pytest.raises(ValueError, match='num_intents'):
        DCCF(3, 3, num_intents=0)
    with pytest.raises(ValueError, match='num_layers'):
        DCCF(3, 3, num_layers=-1)
    with pytest.raises(ValueError, match='temperature'):
        DCCF(3, 3, temperature=0.0)
    with pytest.raises(ValueError, match='users and items'):
        DCCF(0, 3)
    model = toy_model()
    with pytest.raises(ValueError, match='adjacency'):
        model.get_embedding(None)
    with pytest.raises(ValueError, match='same length'):
        model.training_loss(
        toy_graph().norm_adj(), USERS, POS[:2] + NUM_USERS, NEG + NUM_USERS)
    other = InteractionGraph(6, 4, TRAIN)  # one node too many
    with pytest.raises(ValueError, match='adjacency is 10x10'):
        model.get_embedding(other.norm_adj(dtype=torch.float64))
    # NaN in the embeddings is not hidden: the loss is NaN.
    with torch.no_grad():
        model.embedding.weight[0, 0] = float('nan')
    loss, _ = model.training_loss(
        toy_graph().norm_adj(dtype=torch.float64), USERS, POS + NUM_USERS,
        NEG + NUM_USERS)
    assert torch.isnan(loss)


def test_dccf_registry_recipe_and_trainer_epoch():
    recipe = get_recipe('dccf', 'gowalla')
    assert recipe.model_kwargs == {'embedding_dim': 32, 'num_layers': 2,
                                   'num_intents': 128}
    assert recipe.train == {'lr': 1e-3, 'batch_size': 10240,
                            'steps_per_epoch': 40, 'lambda_reg': 2.5e-5,
                            'reg_scaling': 'dccf'}
    graph = clustered_graph()
    model = build_model('dccf', graph, **recipe.model_kwargs)
    assert isinstance(model, DCCF) and model.num_intents == 128
    config = TrainConfig(**{**recipe.train, 'epochs': 1, 'eval_every': 1,
                            'ks': (5, 10), 'monitor': 'recall@10'})
    report = Trainer(model, graph, config, progress=False).fit()
    assert report['epochs_run'] == 1
    assert 0.0 <= report['test']['recall@10'] <= 1.0
    # A smaller model over a few epochs: the loss logged is the full DCCF
    # loss (BPR + reg + prototype + contrastive), and evaluation runs.
    torch.manual_seed(0)
    model = DCCF(24, 16, embedding_dim=8, num_layers=2, num_intents=4)
    trainer = Trainer(model, graph, TrainConfig(
        epochs=3, batch_size=32, lr=1e-2, lambda_reg=2.5e-5,
        reg_scaling='dccf', eval_every=3, patience=0, select='last',
        ks=(5, 10), monitor='recall@10'), progress=False)
    report = trainer.fit()
    train = [r for r in trainer.history if r['kind'] == 'train']
    assert len(train) == 3
    assert all(r['loss'] > r['bpr'] + r['reg'] for r in train)
    assert math.isfinite(report['test']['ndcg@10'])
