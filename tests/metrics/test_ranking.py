import pytest
import torch

from pyg_recsys.metrics import ranking
from pyg_recsys.metrics.ranking import _select_topk, ranking_metrics


def naive_topk(scores, k):
    values, index = [], []
    for row in scores.tolist():
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
        index.append(order)
        values.append([row[j] for j in order])
    return torch.tensor(values, dtype=scores.dtype), torch.tensor(index)


def check_select(scores, k):
    value, index = _select_topk(scores, k)
    ref_value, ref_index = naive_topk(scores, k)
    assert index.dtype == torch.long
    assert index.shape == value.shape == (scores.size(0), k)
    assert torch.equal(index, ref_index)
    assert torch.equal(value, ref_value)


@pytest.mark.parametrize('n', [1, 5, 40, 337, 1500, 2048, 4103])
@pytest.mark.parametrize('k', [1, 3, 20])
def test_select_topk_random(n, k):
    if k > n:
        return
    gen = torch.Generator().manual_seed(n * 31 + k)
    check_select(torch.randn(7, n, generator=gen), k)


@pytest.mark.parametrize('n', [60, 1500, 4103])
@pytest.mark.parametrize('k', [1, 5, 20])
@pytest.mark.parametrize('levels', [2, 4, 50])
def test_select_topk_ties(n, k, levels):
    # Few distinct values: ties everywhere, also at the k-th boundary and
    # between selected chunks and the rest of the row.
    gen = torch.Generator().manual_seed(n + 7 * k + levels)
    scores = torch.randint(0, levels, (9, n), generator=gen).to(torch.float)
    check_select(scores, k)


def test_select_topk_boundary_tie_outside_chunks():
    # The k-th value is a chunk maximum that also appears, at a lower id, in
    # a chunk that is not selected: torch.topk may pick either.
    n, k = 4096, 20
    chunks = n // ranking._CHUNK
    scores = torch.zeros(3, n)
    for r in range(3):
        scores[r, torch.arange(100, 100 + k - 1)] = 10.0 + r
        scores[r, 4000 - r] = 5.0  # the k-th value, high id
        scores[r, 7 + r] = 5.0  # same value, lower id, another chunk
        scores[r, 7 + r + chunks] = 5.0  # same chunk as the previous one
    check_select(scores, k)
    _, index = _select_topk(scores, k)
    assert index[0, -1] == 7


def test_select_topk_constant_and_infinite():
    scores = torch.zeros(4, 3000)
    check_select(scores, 20)
    scores[:, 100:2900] = float('-inf')
    scores[1, 2500] = float('inf')
    scores[2, :] = float('-inf')
    check_select(scores, 20)
    check_select(scores[:, :150], 120)


def test_select_topk_full_and_near_full():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 3, (5, 30), generator=gen).to(torch.double)
    check_select(scores, 30)
    check_select(scores, 29)


def test_select_topk_chunk_path_matches_direct(monkeypatch):
    gen = torch.Generator().manual_seed(2)
    scores = torch.randint(0, 6, (16, 5000), generator=gen).float()
    chunked = _select_topk(scores, 10)
    monkeypatch.setattr(ranking, '_CHUNK', 10**9)  # forces the direct path
    direct = _select_topk(scores, 10)
    assert torch.equal(chunked[0], direct[0])
    assert torch.equal(chunked[1], direct[1])


def test_select_topk_non_contiguous_and_empty():
    gen = torch.Generator().manual_seed(3)
    base = torch.randint(0, 4, (6, 2600), generator=gen).float()
    check_select(base[:, 3:2500], 20)
    value, index = _select_topk(torch.empty(0, 10), 4)
    assert value.shape == index.shape == (0, 4)


def test_select_topk_errors():
    with pytest.raises(ValueError, match='k must lie'):
        _select_topk(torch.zeros(2, 5), 6)
    with pytest.raises(ValueError, match='k must lie'):
        _select_topk(torch.zeros(2, 5), 0)
    with pytest.raises(ValueError, match='2-dimensional'):
        _select_topk(torch.zeros(5), 1)


@pytest.mark.parametrize('length', [1, 7, 25])
def test_ranking_metrics_naive(length, naive_user_metrics):
    gen = torch.Generator().manual_seed(length)
    hits = torch.rand(40, length, generator=gen) < 0.3
    num_rel = torch.randint(1, 12, (40, ), generator=gen)
    num_rel = torch.maximum(num_rel, hits.sum(1))
    ks = (1, 5, 10, 30)
    out = ranking_metrics(hits, num_rel, ks)
    assert len(out) == 7 * len(ks)
    for u in range(40):
        for k in ks:
            ref = naive_user_metrics(hits[u].tolist(), int(num_rel[u]), k)
            for name, val in ref.items():
                assert out[f'{name}@{k}'][u].item() == pytest.approx(
                    val, abs=1e-12), (name, k, u)


def test_ranking_metrics_errors():
    with pytest.raises(ValueError, match='unknown ranking metric'):
        ranking_metrics(torch.zeros(2, 3, dtype=torch.bool),
                        torch.ones(2, dtype=torch.long), metrics=('auc', ))
    with pytest.raises(ValueError, match='positive'):
        ranking_metrics(torch.zeros(2, 3, dtype=torch.bool),
                        torch.ones(2, dtype=torch.long), ks=(0, ))
    with pytest.raises(ValueError, match='at least one relevant'):
        ranking_metrics(torch.zeros(2, 3, dtype=torch.bool),
                        torch.tensor([1, 0]))
    with pytest.raises(ValueError, match='expected hits'):
        ranking_metrics(torch.zeros(2, 3, dtype=torch.bool),
                        torch.ones(3, dtype=torch.long))
