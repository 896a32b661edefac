import math

import pytest
import torch

from pyg_recsys.metrics.ctr import (
    auc,
    batch_mean_auc,
    calibration,
    ctr_metrics,
    gauc,
    log_loss,
)


def naive_auc(scores, labels):
    # Every (click, non-click) pair: 1 if the click scores higher, 1/2 tied.
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    total = sum(1.0 if p > q else 0.5 if p == q else 0.0
                for p in pos for q in neg)
    return total / (len(pos) * len(neg))


def data(n=200, seed=0, ties=False):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=g) < 0.3).long()
    scores = torch.randn(n, generator=g) + labels
    if ties:
        scores = (scores * 2).round() / 2  # many tied scores
    return scores, labels


@pytest.mark.parametrize('ties', [False, True])
def test_auc_equals_pair_count(ties):
    scores, labels = data(ties=ties)
    assert auc(scores, labels) == pytest.approx(
        naive_auc(scores.tolist(), labels.tolist()), abs=1e-12)


@pytest.mark.parametrize('ties', [False, True])
def test_gauc_equals_weighted_per_user_loop(ties):
    scores, labels = data(300, seed=1, ties=ties)
    g = torch.Generator().manual_seed(2)
    users = torch.randint(0, 25, (300, ), generator=g)
    num = den = 0.0
    for u in users.unique().tolist():
        m = users == u
        y = labels[m].tolist()
        if 0 < sum(y) < len(y):
            num += len(y) * naive_auc(scores[m].tolist(), y)
            den += len(y)
    assert gauc(scores, labels, users) == pytest.approx(num / den, abs=1e-12)


def test_batch_mean_auc_as_the_kgcn_loop():
    scores, labels = data(250, seed=3)
    ref = [naive_auc(scores[i:i + 64].tolist(), labels[i:i + 64].tolist())
           for i in range(0, 250 - 64 + 1, 64)]  # full batches only
    assert batch_mean_auc(scores, labels, 64) == pytest.approx(
        sum(ref) / len(ref), abs=1e-12)
    ref.append(naive_auc(scores[192:].tolist(), labels[192:].tolist()))
    assert batch_mean_auc(scores, labels, 64, drop_last=False) == \
        pytest.approx(sum(ref) / len(ref), abs=1e-12)


def test_log_loss_against_the_formula():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(100, generator=g) * 3
    labels = (torch.rand(100, generator=g) < 0.4).long()
    p = [1 / (1 + math.exp(-x)) for x in logits.tolist()]
    ref = -sum(y * math.log(q) + (1 - y) * math.log(1 - q)
               for q, y in zip(p, labels.tolist())) / 100
    assert log_loss(torch.tensor(p, dtype=torch.float64), labels) == \
        pytest.approx(ref, rel=1e-9)
    assert log_loss(logits, labels, logits=True) == pytest.approx(ref,
                                                                  rel=1e-9)
    # Clipping keeps a confident mistake finite.
    assert math.isfinite(log_loss(torch.tensor([0.0]), torch.tensor([1])))


def test_calibration_deciles():
    g = torch.Generator().manual_seed(5)
    p = torch.rand(1000, generator=g)
    y = (torch.rand(1000, generator=g) < p).long()
    out = calibration(p, y)
    order = sorted(range(1000), key=lambda i: float(p[i]))
    for b in range(10):
        idx = order[b * 100:(b + 1) * 100]
        assert out['count'][b] == 100
        assert out['predicted'][b] == pytest.approx(
            sum(float(p[i]) for i in idx) / 100, abs=1e-12)
        assert out['observed'][b] == pytest.approx(
            sum(int(y[i]) for i in idx) / 100, abs=1e-12)
    ece = sum(abs(a - b) for a, b in zip(out['predicted'], out['observed']))
    assert out['ece'] == pytest.approx(ece / 10, abs=1e-12)
    # Calibrated by construction: small error; a shifted predictor: large.
    assert out['ece'] < 0.06
    assert calibration((p + 0.3).clamp(max=1), y)['ece'] > 0.2


def test_ctr_metrics_and_bad_input():
    scores, labels = data()
    out = ctr_metrics(scores, labels, groups=torch.arange(200) % 7,
                      logits=True)
    assert set(out) == {'auc', 'logloss', 'ece', 'mean_pred', 'ctr', 'gauc'}
    with pytest.raises(ValueError, match='both clicks and non-clicks'):
        auc(torch.rand(5), torch.ones(5))
    with pytest.raises(ValueError, match='labels must be 0 or 1'):
        auc(torch.rand(3), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match='NaN'):
        auc(torch.tensor([0.1, float('nan')]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='3 scores for 2 labels'):
        auc(torch.rand(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'probabilities must lie in \[0, 1\]'):
        log_loss(torch.tensor([1.5]), torch.tensor([1]))
    with pytest.raises(ValueError, match='no group has both'):
        gauc(torch.rand(4), torch.tensor([0, 0, 1, 1]),
             torch.tensor([0, 0, 1, 1]))
