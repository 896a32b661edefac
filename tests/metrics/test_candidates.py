import math

import pytest
import torch

from pyg_recsys.data.graph import InteractionGraph
from pyg_recsys.metrics import Evaluator, reclm_protocol


def two_day_graph(seed=0, users=25, old=30, new=20):
    r"""Items 0..old-1 occur in training; test clicks fall on old and new
    items (new ones, old..old+new-1, never occur in training)."""
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randperm(users * old, generator=gen)[:120]
    train = torch.stack([keys // old, keys % old])
    new_keys = torch.randperm(users * new, generator=gen)[:60]
    test_new = torch.stack([new_keys // new, old + new_keys % new])
    rest = torch.randperm(users * old, generator=gen)
    seen = set((keys).tolist())
    rest = torch.tensor([k for k in rest.tolist() if k not in seen][:40])
    test_old = torch.stack([rest // old, rest % old])
    return InteractionGraph(users, old + new, train,
                            test=torch.cat([test_new, test_old], dim=1))


def naive(graph, scores, candidates, mask_train, k):
    r"""A per-user loop: rank the candidates by score (ties: lower id),
    optionally dropping training items, and average Recall/NDCG@k over the
    users with a relevant candidate."""
    cand = set(candidates.tolist())
    train = {}
    for u, i in graph.train.t().tolist():
        train.setdefault(u, set()).add(i)
    test = {}
    for u, i in graph.test.t().tolist():
        if i in cand:
            test.setdefault(u, set()).add(i)
    rec, ndcg = [], []
    for u, rel in sorted(test.items()):
        items = [i for i in sorted(cand)
                 if not (mask_train and i in train.get(u, ()))]
        items.sort(key=lambda i: (-float(scores[u, i]), i))
        top = items[:k]
        hits = [i in rel for i in top]
        rec.append(sum(hits) / len(rel))
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
        ndcg.append(dcg / idcg)
    return {'recall': sum(rec) / len(rec), 'ndcg': sum(ndcg) / len(ndcg),
            'users': len(rec)}


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_reclm_protocol_against_naive_loop(seed):
    g = two_day_graph(seed)
    gen = torch.Generator().manual_seed(seed)
    user = torch.randint(-2, 3, (g.num_users, 3), generator=gen).float()
    item = torch.randint(-2, 3, (g.num_items, 3), generator=gen).float()
    scores = user @ item.t()
    for setting, mask in (('zero-shot', False), ('full-shot', True)):
        args = reclm_protocol(g, setting)
        ev = Evaluator(g, ks=(5, 10), metrics=('recall', 'ndcg'), **args)
        out = ev.evaluate(user, item)
        cand = args['candidates'].nonzero().view(-1)
        for k in (5, 10):
            ref = naive(g, scores, cand, mask, k)
            assert ev.num_eval_users == ref['users']
            assert out[f'recall@{k}'] == pytest.approx(ref['recall'])
            assert out[f'ndcg@{k}'] == pytest.approx(ref['ndcg'])
        # Nothing outside the candidates is ever recommended.
        top = ev.rank(user, item)
        assert bool(args['candidates'][top[top >= 0]].all())
    zs = reclm_protocol(g, 'zero-shot')
    new = torch.zeros(g.num_items, dtype=torch.bool)
    new[g.test[1][g.test[1] >= 30]] = True  # new items that occur in test
    assert zs['exclude'] == () and torch.equal(zs['candidates'], new)
    fs = reclm_protocol(g, 'full-shot')
    assert fs['exclude'] == ('train', )
    occurs = torch.zeros(g.num_items, dtype=torch.bool)
    occurs[g.test[1]] = True
    assert torch.equal(fs['candidates'], occurs)


def test_candidates_as_ids_equal_mask_and_score_fn():
    g = two_day_graph(3)
    gen = torch.Generator().manual_seed(3)
    user, item = torch.randn(g.num_users, 4, generator=gen), \
        torch.randn(g.num_items, 4, generator=gen)
    ids = torch.tensor([31, 5, 40, 2, 33])
    mask = torch.zeros(g.num_items, dtype=torch.bool)
    mask[ids] = True
    a = Evaluator(g, ks=(3, ), candidates=ids).evaluate(user, item)
    b = Evaluator(g, ks=(3, ), candidates=mask).evaluate(user, item)
    c = Evaluator(g, ks=(3, ), candidates=ids).evaluate_scores(
        lambda u: user[u] @ item.t())
    assert a == b
    for key in a:
        assert c[key] == pytest.approx(a[key])
    # K above the number of candidates: lists are cut at the candidates.
    ev = Evaluator(g, ks=(10, ), candidates=ids, exclude=())
    assert ev.max_k == 5 and ev.rank(user, item).shape[1] == 5


def test_candidate_errors():
    g = two_day_graph()
    with pytest.raises(ValueError, match='outside'):
        Evaluator(g, candidates=torch.tensor([0, 99]))
    with pytest.raises(ValueError, match='shape'):
        Evaluator(g, candidates=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match='empty'):
        Evaluator(g, candidates=torch.zeros(g.num_items, dtype=torch.bool))
    with pytest.raises(ValueError, match='1-D tensor of item ids'):
        Evaluator(g, candidates=torch.tensor([0.5]))
    with pytest.raises(ValueError, match='unknown setting'):
        reclm_protocol(g, 'few-shot')
    warm = InteractionGraph(3, 4, torch.tensor([[0, 1], [0, 1]]),
                            test=torch.tensor([[2], [0]]))
    with pytest.raises(ValueError, match='nothing to rank'):
        reclm_protocol(warm, 'zero-shot')
