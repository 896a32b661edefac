import math

import pytest
import torch

from pyg_recsys.data import InteractionGraph
from pyg_recsys.metrics import Evaluator, sheaf4rec_code_metrics


def random_graph(seed=0, num_users=30, num_items=25):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(num_users * num_items, generator=g)[:300]
    pairs = torch.stack([keys // num_items, keys % num_items])
    return InteractionGraph(num_users, num_items, pairs[:, :200],
                            valid=pairs[:, 200:240], test=pairs[:, 240:])


def naive_code_protocol(user_emb, item_emb, masked, test, k):
    r"""The released code's protocol, one user at a time: scores times
    (1 - mask), top-k by (-score, item id), P and R per user, F1 of the
    averages; also the mean of per-user F1."""
    num_items = item_emb.size(0)
    test_items = {}
    for u, i in test.t().tolist():
        test_items.setdefault(u, set()).add(i)
    masked = set(map(tuple, masked.t().tolist()))
    precision, recall, ndcg, f1_user, masked_shown = [], [], [], [], 0
    for u in sorted(test_items):
        scores = [float(user_emb[u] @ item_emb[i]) *
                  (0.0 if (u, i) in masked else 1.0)
                  for i in range(num_items)]
        top = sorted(range(num_items), key=lambda i: (-scores[i], i))[:k]
        masked_shown += sum((u, i) in masked for i in top)
        rel = test_items[u]
        hits = [i in rel for i in top]
        p, r = sum(hits) / k, sum(hits) / len(rel)
        precision.append(p)
        recall.append(r)
        f1_user.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
        dcg = sum(1 / math.log2(j + 2) for j, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
        ndcg.append(dcg / idcg)
    p_bar = sum(precision) / len(precision)
    r_bar = sum(recall) / len(recall)
    return {
        f'precision@{k}': p_bar,
        f'recall@{k}': r_bar,
        f'f1@{k}': 0.0 if p_bar + r_bar == 0 else
        2 * p_bar * r_bar / (p_bar + r_bar),
        f'ndcg@{k}': sum(ndcg) / len(ndcg),
    }, sum(f1_user) / len(f1_user), masked_shown


@pytest.mark.parametrize('integer', [False, True])
def test_matches_naive_loop(integer):
    graph = random_graph()
    torch.manual_seed(0)
    user_emb = torch.randn(30, 4, dtype=torch.float64)
    item_emb = torch.randn(25, 4, dtype=torch.float64)
    if integer:  # many tied scores: ties go to the lower item id
        user_emb, item_emb = user_emb.round(), item_emb.round()
    masked = torch.cat([graph.train, graph.valid], dim=1)
    out = sheaf4rec_code_metrics(user_emb, item_emb, graph, 'test',
                                 ks=(5, 10), batch_size=7)
    shown = 0
    for k in (5, 10):
        ref, f1_mean, masked_shown = naive_code_protocol(
            user_emb, item_emb, masked, graph.test, k)
        shown += masked_shown
        for key, val in ref.items():
            assert out[key] == pytest.approx(val, rel=1e-12, abs=1e-12), key
        if not integer and k == 10:
            # F1 of the averages is not the average of per-user F1.
            assert out['f1@10'] != pytest.approx(f1_mean)
    # With mixed-sign scores, masked items (score 0) reach the top-k.
    assert shown > 0
    assert set(out) == {f'{m}@{k}' for m in ('precision', 'recall', 'f1',
                                              'ndcg') for k in (5, 10)}


def test_input_forms_and_difference_to_evaluator():
    graph = random_graph(1)
    torch.manual_seed(1)
    user_emb = torch.randn(30, 4)
    item_emb = torch.randn(25, 4)
    by_pairs = sheaf4rec_code_metrics(user_emb, item_emb, graph.train,
                                      graph.valid, ks=10)
    by_csr = sheaf4rec_code_metrics(user_emb, item_emb, graph.csr('train'),
                                    graph.valid, ks=10)
    by_graph = sheaf4rec_code_metrics(user_emb, item_emb, graph, 'valid',
                                      ks=10)
    assert by_pairs == by_csr == by_graph
    ref, _, _ = naive_code_protocol(user_emb, item_emb, graph.train,
                                    graph.valid, 10)
    for key, val in ref.items():
        assert by_graph[key] == pytest.approx(val, rel=1e-6)
    # With positive scores only, masking by zero and by -inf rank alike:
    # precision, recall and NDCG equal the package's evaluator's.
    pos_user, pos_item = user_emb.abs(), item_emb.abs()
    code = sheaf4rec_code_metrics(pos_user, pos_item, graph, 'test', ks=10)
    ev = Evaluator(graph, 'test', ks=(10, )).evaluate(pos_user, pos_item)
    for m in ('precision', 'recall', 'ndcg'):
        assert code[f'{m}@10'] == pytest.approx(ev[f'{m}@10'])


def test_errors():
    graph = random_graph()
    u, i = torch.randn(30, 4), torch.randn(25, 4)
    with pytest.raises(ValueError, match='split name'):
        sheaf4rec_code_metrics(u, i, graph, graph.test)
    with pytest.raises(ValueError, match='unless'):
        sheaf4rec_code_metrics(u, i, graph.train, 'test')
    with pytest.raises(ValueError, match='exceed'):
        sheaf4rec_code_metrics(u, i, graph, ks=26)
    with pytest.raises(ValueError, match='embeddings 29 and 25'):
        sheaf4rec_code_metrics(torch.randn(29, 4), i, graph)
    with pytest.raises(ValueError, match='no user has a test item'):
        sheaf4rec_code_metrics(u, i, graph.train,
                               torch.empty(2, 0, dtype=torch.long))
