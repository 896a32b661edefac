from collections import Counter

import pytest
import torch

from pyg_recsys.data.sequences import SequenceData
from pyg_recsys.nn.models.item_sources import (
    _pairs,
    item2vec,
    item_vectors,
    lightgcn_item_vectors,
    smooth_item_vectors,
    transition_graph,
)

SEQS = [[0, 1, 2, 1], [3], [2, 2, 4, 0, 1], [4, 3]]


def naive_pairs(seqs, window):
    return Counter((s[a], s[b]) for s in seqs for a in range(len(s))
                   for b in range(a + 1, min(a + window + 1, len(s))))


@pytest.mark.parametrize('window', [1, 2, 4])
def test_pairs_and_transition_graph_match_a_naive_loop(window):
    data = SequenceData.from_lists(SEQS, num_items=6)
    got = Counter(map(tuple, _pairs(data, window).t().tolist()))
    assert got == naive_pairs(SEQS, window)
    graph = transition_graph(data, window)
    want = Counter()
    for (i, j), c in naive_pairs(SEQS, window).items():
        if i != j:
            want[(i, j)] += c
            want[(j, i)] += c
    edges = dict(zip(map(tuple, graph.edge_index.t().tolist()),
                     graph.edge_weight.tolist()))
    assert edges == dict(want)
    assert graph.num_nodes == 6
    one_way = transition_graph(data, window, symmetric=False)
    assert one_way.edge_weight.sum() == sum(
        c for (i, j), c in naive_pairs(SEQS, window).items() if i != j)


def test_smooth_item_vectors_equals_dense_propagation():
    data = SequenceData.from_lists(SEQS, num_items=6)
    graph = transition_graph(data, 2)
    x = torch.randn(6, 3, dtype=torch.float64)
    a = torch.zeros(6, 6, dtype=torch.float64)
    a[graph.edge_index[1], graph.edge_index[0]] = graph.edge_weight.double()
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    norm = inv.view(-1, 1) * a * inv.view(1, -1)
    want = (x + norm @ x + norm @ norm @ x) / 3
    got = smooth_item_vectors(x, graph, num_layers=2)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match=r'\[6, d\]'):
        smooth_item_vectors(x[:5], graph)


def clustered(num_users=120, length=8, seed=0):
    # Users of group g only consume items of g's half of 20 items.
    gen = torch.Generator().manual_seed(seed)
    seqs = []
    for u in range(num_users):
        base = 10 * (u % 2)
        seqs.append((base + torch.randint(0, 10, (length, ),
                                          generator=gen)).tolist())
    return SequenceData.from_lists(seqs, num_items=20)


def separation(vec):
    vec = torch.nn.functional.normalize(vec, dim=-1)
    sim = vec @ vec.t()
    group = torch.arange(20) // 10
    same = group.view(-1, 1) == group.view(1, -1)
    off = ~torch.eye(20, dtype=torch.bool)
    return sim[same & off].mean() - sim[~same].mean()


def test_item2vec_puts_co_consumed_items_together():
    data = clustered()
    vec = item2vec(data, embedding_dim=8, window=3, epochs=20,
                   batch_size=256, lr=0.02)
    assert vec.shape == (20, 8)
    assert separation(vec) > 0.5
    # Deterministic under a seed.
    again = item2vec(data, embedding_dim=8, window=3, epochs=1,
                     batch_size=256, seed=3)
    torch.testing.assert_close(again, item2vec(
        data, embedding_dim=8, window=3, epochs=1, batch_size=256, seed=3))


def test_lightgcn_item_vectors_put_co_consumed_items_together():
    data = clustered()
    vec = lightgcn_item_vectors(data, embedding_dim=8, num_layers=2,
                                epochs=30, lr=0.01, batch_size=256)
    assert vec.shape == (20, 8) and bool(torch.isfinite(vec).all())
    assert separation(vec) > 0.5


def test_item_vectors_dispatch_and_errors():
    data = clustered(num_users=20)
    assert item_vectors('learned', data) is None
    vec = item_vectors('transition', data, embedding_dim=4, epochs=1)
    assert vec.shape == (20, 4)
    given = torch.randn(20, 4)
    assert item_vectors(given, data) is given
    with pytest.raises(ValueError, match=r'\[20, d\]'):
        item_vectors(torch.randn(19, 4), data)
    with pytest.raises(ValueError, match='source must be one of'):
        item_vectors('word2vec', data)
    with pytest.raises(ValueError, match='no sequence has two items'):
        item2vec(SequenceData.from_lists([[1], [2]], num_items=3))
    with pytest.raises(ValueError, match='window must be >= 1'):
        item2vec(data, window=0)
