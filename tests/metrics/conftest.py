import math

import pytest

from pyg_recsys.metrics import METRICS


def naive_user_metrics(hits, num_rel, k):
    h = hits[:k]
    nh = sum(h)
    dcg = sum(1 / math.log2(r + 2) for r, x in enumerate(h) if x)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(k, num_rel)))
    first = next((r for r, x in enumerate(h) if x), None)
    ap, seen = 0.0, 0
    for r, x in enumerate(h):
        if x:
            seen += 1
            ap += seen / (r + 1)
    p, rec = nh / k, nh / num_rel
    return {
        'recall': rec,
        'precision': p,
        'hit': float(nh > 0),
        'ndcg': dcg / idcg,
        'mrr': 0.0 if first is None else 1 / (first + 1),
        'map': ap / min(k, num_rel),
        'f1': 0.0 if p + rec == 0 else 2 * p * rec / (p + rec),
    }


@pytest.fixture(name='naive_user_metrics')
def naive_user_metrics_fixture():
    r"""Per-user metrics of one ranked hit list, in plain Python."""
    return naive_user_metrics


def naive_evaluate(graph, scores, split, exclude, ks, metrics=METRICS):
    r"""Per-user loop: full sort with the key (-score, item id)."""
    num_items = graph.num_items
    excluded = set()
    for s in exclude:
        excluded |= {tuple(p) for p in graph.split(s).t().tolist()}
    relevant = {}
    for u, i in graph.split(split).t().tolist():
        relevant.setdefault(u, set()).add(i)
    sums = {f'{m}@{k}': 0.0 for m in metrics for k in ks}
    for u, rel in relevant.items():
        row = [float('-inf') if (u, i) in excluded else float(scores[u, i])
               for i in range(num_items)]
        order = sorted(range(num_items), key=lambda i: (-row[i], i))
        hits = [i in rel for i in order[:max(ks)]]
        for k in ks:
            vals = naive_user_metrics(hits, len(rel), k)
            for m in metrics:
                sums[f'{m}@{k}'] += vals[m]
    return {key: val / len(relevant) for key, val in sums.items()}


@pytest.fixture(name='naive_evaluate')
def naive_evaluate_fixture():
    r"""Mean metrics of a dense score matrix by a per-user Python loop."""
    return naive_evaluate
