import pytest
import torch
import torch.nn.functional as F

from pyg_recsys.data import InteractionGraph
from pyg_recsys.metrics import Evaluator, reclm_protocol
from pyg_recsys.nn.loss import info_nce
from pyg_recsys.nn.models.text import (
    TextAlign,
    TextFusion,
    TextRegularizedLightGCN,
    TextZeroShot,
)
from pyg_recsys.text import HashingEncoder, mean_of_items
from pyg_recsys.train import TrainConfig, Trainer


def topic_graph(seed=0, users=60, old=40, new=20, picks=6):
    r"""Two topics; item i's text names its topic. Users of topic t click
    items of topic t; items old..old+new-1 are new (test only)."""
    gen = torch.Generator().manual_seed(seed)
    n_items = old + new
    topic = torch.arange(n_items) % 2
    words = [['football match goal', 'election vote senate'][int(t)] +
             f' story{i}' for i, t in enumerate(topic)]
    train, test = [], []
    for u in range(users):
        t = u % 2
        olds = (topic[:old] == t).nonzero().view(-1)
        news = (topic[old:] == t).nonzero().view(-1) + old
        for i in olds[torch.randperm(olds.numel(), generator=gen)[:picks]]:
            train.append((u, int(i)))
        for i in news[torch.randperm(news.numel(), generator=gen)[:2]]:
            test.append((u, int(i)))
    g = InteractionGraph(users, n_items, torch.tensor(train).t(),
                         test=torch.tensor(test).t())
    return g, HashingEncoder(64).encode(words)


def dense_adj(g):
    n = g.num_nodes
    a = torch.zeros(n, n)
    u, i = g.train
    a[u, g.num_users + i] = 1
    a[g.num_users + i, u] = 1
    d = a.sum(1).clamp(min=1).pow(-0.5)
    return d.view(-1, 1) * a * d.view(1, -1)


def test_zero_shot_is_cosine():
    g, text = topic_graph()
    rowptr, col = g.csr('train')
    prof = mean_of_items(rowptr, col, text, normalize=False) * 3.0
    m = TextZeroShot(prof, text)
    out = m.get_embedding()
    scores = out[:g.num_users] @ out[g.num_users:].t()
    ref = F.cosine_similarity(prof.unsqueeze(1), text.unsqueeze(0), dim=-1)
    torch.testing.assert_close(scores, ref)
    assert not any(p.requires_grad for p in m.parameters())
    ev = Evaluator(g, ks=(5, ), **reclm_protocol(g, 'zero-shot'))
    # Topic words make the right new items the nearest.
    assert ev.evaluate(out[:g.num_users], out[g.num_users:])['recall@5'] \
        > 0.3
    with pytest.raises(ValueError, match='columns'):
        TextZeroShot(prof[:, :10], text)
    with pytest.raises(ValueError, match='NaN'):
        TextZeroShot(prof * float('nan'), text)


@pytest.mark.parametrize('backbone', ['mf', 'lightgcn'])
@pytest.mark.parametrize('bias', [False, True])
def test_fusion_embeddings_against_dense(backbone, bias):
    g, text = topic_graph()
    torch.manual_seed(0)
    m = TextFusion(g.num_users, text, embedding_dim=8, backbone=backbone,
                   num_layers=2, text_bias=bias)
    out = m.get_embedding(g.norm_adj())
    items = F.normalize(m.item_tower(text), dim=-1)
    users = m.user_embedding.weight
    if backbone == 'lightgcn':
        a = dense_adj(g)
        x = torch.cat([users, items])
        users = ((x + a @ x + a @ a @ x) / 3)[:g.num_users]
    if bias:
        users = torch.cat([users, torch.ones(g.num_users, 1)], -1)
        items = torch.cat([items, m.bias(text)], -1)
    torch.testing.assert_close(out, torch.cat([users, items]), atol=1e-5,
                               rtol=1e-5)


def test_fusion_bpr_and_user_reg():
    g, text = topic_graph()
    torch.manual_seed(0)
    m = TextFusion(g.num_users, text, embedding_dim=8)
    users = torch.tensor([0, 1, 2])
    pos = torch.tensor([0, 1, 2]) + g.num_users
    neg = torch.tensor([5, 6, 7]) + g.num_users
    loss, parts = m.training_loss(None, users, pos, neg, lambda_reg=0.1)
    out = m.get_embedding()
    diff = (out[users] * (out[pos] - out[neg])).sum(-1)
    bpr = -F.logsigmoid(diff).mean()
    reg = 0.1 * m.user_embedding.weight[users].pow(2).sum() / 3
    assert float(loss.detach()) == pytest.approx(float(bpr + reg), rel=1e-5)
    assert parts['bpr'] == pytest.approx(float(bpr), rel=1e-5)


def test_fusion_item_ids_stay_zero_for_new_items():
    g, text = topic_graph()
    cfg = TrainConfig(epochs=3, batch_size=64, lr=1e-2, eval_every=3,
                      select='last', ks=(5, ), monitor='recall@5',
                      negative_pool='train', device='cpu', seed=0)
    torch.manual_seed(0)
    m = TextFusion(g.num_users, text, embedding_dim=8, item_ids=True)
    torch.testing.assert_close(m.get_embedding()[g.num_users:],
                               F.normalize(m.item_tower(text), dim=-1))
    Trainer(m, g, cfg, progress=False).fit()
    ids = m.item_ids.weight
    assert bool((ids[:40].abs().sum(1) > 0).all())  # trained items
    assert bool((ids[40:] == 0).all())  # never a positive or a negative
    out = m.get_embedding()[g.num_users:]
    torch.testing.assert_close(out[40:],
                               F.normalize(m.item_tower(text[40:]), dim=-1))


def test_fusion_with_profiles_and_errors():
    g, text = topic_graph()
    rowptr, col = g.csr('train')
    prof = mean_of_items(rowptr, col, text)
    m = TextFusion(g.num_users, text, user_text=prof, item_profile=text,
                   embedding_dim=8, dropout=0.2)
    m.eval()
    out = m.get_embedding()
    assert out.shape == (g.num_nodes, 8) and bool(torch.isfinite(out).all())
    with pytest.raises(ValueError, match='unknown backbone'):
        TextFusion(g.num_users, text, backbone='ngcf')
    with pytest.raises(ValueError, match='item_profile needs user_text'):
        TextFusion(g.num_users, text, item_profile=text)
    with pytest.raises(ValueError, match=r'shape \[60, d\]'):
        TextFusion(g.num_users, text, user_text=prof[:5])
    with pytest.raises(ValueError, match='needs the normalised adjacency'):
        TextFusion(g.num_users, text, backbone='lightgcn').get_embedding()


def test_fusion_learns_new_items_from_text():
    g, text = topic_graph()
    cfg = TrainConfig(epochs=30, batch_size=64, lr=1e-2, eval_every=30,
                      select='last', ks=(5, ), monitor='recall@5',
                      negative_pool='train', device='cpu', seed=0)
    ev = Evaluator(g, ks=(5, ), **reclm_protocol(g, 'zero-shot'))
    torch.manual_seed(0)
    m = TextFusion(g.num_users, text, embedding_dim=16)
    before = ev.evaluate(*m.get_embedding().split([g.num_users,
                                                    g.num_items]))
    Trainer(m, g, cfg, progress=False, evaluators={'test': ev}).fit()
    after = ev.evaluate(*m.get_embedding().split([g.num_users,
                                                   g.num_items]))
    # Of the 20 new items, 10 share the user's topic and 2 of those are
    # relevant: a random ranking gets recall@5 = 0.25 in expectation, a
    # perfect topic ranking 0.5 (the ceiling: words beyond the topic are
    # unique to each item).
    assert after['recall@5'] > 0.45 and before['recall@5'] < 0.4
    # Asked among new items only (node ids U + 40 ..), recommend() gives
    # each user items of their topic: new items get scores from text.
    new = torch.arange(40, 60) + g.num_users
    top = m.recommend(g.norm_adj(), src_index=torch.arange(6),
                      dst_index=new, k=3)
    topic = (top - g.num_users) % 2
    assert (topic == torch.arange(6).view(-1, 1) % 2).float().mean() > 0.9


def test_align_starts_as_zero_shot_and_leaves_the_positive_out():
    g, text = topic_graph()
    rowptr, col = g.csr('train')
    m = TextAlign(text, history=(rowptr, col), temperature=0.1)
    zs = TextZeroShot(mean_of_items(rowptr, col, text), text)
    torch.testing.assert_close(m.get_embedding(), zs.get_embedding())
    users = torch.tensor([0, 1, 4])
    items = torch.stack([col[rowptr[u]] for u in users])
    loss, _ = m.training_loss(None, users, items + g.num_users, items)
    # Reference: the mean of the other training items of each user.
    prof = []
    for u, i in zip(users.tolist(), items.tolist()):
        others = [j for j in col[rowptr[u]:rowptr[u + 1]].tolist() if j != i]
        prof.append(text[others].mean(0))
    ref = info_nce(torch.stack(prof), text[items], 0.1)
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)
    with pytest.raises(ValueError, match='either user_text or history'):
        TextAlign(text)
    with pytest.raises(ValueError, match='temperature'):
        TextAlign(text, user_text=torch.ones(3, 64), temperature=0)


def test_align_training_lowers_the_loss():
    g, text = topic_graph()
    torch.manual_seed(0)
    m = TextAlign(text, history=g.csr('train'), hidden_dim=32)
    cfg = TrainConfig(epochs=20, batch_size=128, lr=1e-2, eval_every=20,
                      select='last', ks=(5, ), monitor='recall@5', device='cpu',
                      seed=0)
    tr = Trainer(m, g, cfg, progress=False)
    first = tr.train_epoch()['loss']
    for _ in range(10):
        last = tr.train_epoch()['loss']
    assert last < first


def test_text_regularized_lightgcn_extra_term():
    g, text = topic_graph()
    torch.manual_seed(0)
    m = TextRegularizedLightGCN(g.num_users, text, embedding_dim=8,
                                num_layers=2, text_weight=0.5,
                                temperature=0.3)
    adj = g.norm_adj()
    users = torch.tensor([0, 1, 2, 3])
    pos = torch.tensor([0, 1, 2, 3]) + g.num_users
    neg = torch.tensor([9, 8, 7, 6]) + g.num_users
    loss, parts = m.training_loss(adj, users, pos, neg, lambda_reg=0.0)
    final = m.get_embedding(adj)
    ref = 0.5 * info_nce(m.project(text[:4]), final[pos], 0.3)
    assert parts['text'] == pytest.approx(float(ref), rel=1e-5)
    assert float(loss) == pytest.approx(parts['bpr'] + parts['text'],
                                        rel=1e-5)
