r"""Pointwise (click-through) metrics: AUC, GAUC, log loss, calibration.

Scores are any real numbers ordered like the click probability (AUC and
GAUC depend on the order only); :func:`log_loss` and :func:`calibration`
take probabilities, or logits with :obj:`logits=True`. Labels are 0 / 1.
"""
from typing import Dict, Optional

import torch
from torch import Tensor


def _check(scores: Tensor, labels: Tensor, where: str):
    scores = torch.as_tensor(scores).reshape(-1)
    labels = torch.as_tensor(labels).reshape(-1)
    if scores.numel() != labels.numel():
        raise ValueError(f"{where}: {scores.numel()} scores for "
                         f"{labels.numel()} labels")
    if scores.numel() == 0:
        raise ValueError(f"{where}: no impressions")
    if not bool(torch.isfinite(scores.double()).all()):
        raise ValueError(f"{where}: scores contain NaN or infinity")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{where}: labels must be 0 or 1")
    return scores.double(), labels.double()


def _tied_ranks(keys: Tensor, scores: Tensor) -> Tensor:
    r"""1-based ranks of :obj:`scores` within each group of equal
    :obj:`keys` (ascending score), ties sharing their mean rank."""
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(keys[order], stable=True)]
    k, s = keys[order], scores[order]
    n = k.numel()
    new_group = torch.ones(n, dtype=torch.bool)
    new_group[1:] = k[1:] != k[:-1]
    new_run = new_group.clone()
    new_run[1:] |= s[1:] != s[:-1]
    # Position within the group, then the mean position of each tie run.
    pos = torch.arange(n, dtype=torch.float64)
    group_start = torch.cummax(torch.where(new_group, pos, 0.0), 0).values
    within = pos - group_start + 1
    run = torch.cumsum(new_run.long(), 0) - 1
    run_sum = torch.zeros(int(run[-1]) + 1, dtype=torch.float64)
    run_sum.index_add_(0, run, within)
    run_len = torch.bincount(run).double()
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = (run_sum / run_len)[run]
    return ranks


def auc(scores: Tensor, labels: Tensor) -> float:
    r"""The area under the ROC curve: the probability that a random click
    scores above a random non-click, ties counting one half (the
    Mann–Whitney statistic from mean ranks). Raises if only one class is
    present."""
    scores, labels = _check(scores, labels, 'auc')
    pos = float(labels.sum())
    neg = labels.numel() - pos
    if pos == 0 or neg == 0:
        raise ValueError("auc: needs both clicks and non-clicks")
    ranks = _tied_ranks(torch.zeros_like(scores), scores)
    return float(((ranks * labels).sum() - pos * (pos + 1) / 2) / (pos * neg))


def gauc(scores: Tensor, labels: Tensor, groups: Tensor) -> float:
    r"""Group AUC (Zhou et al., DIN, KDD 2018): the AUC of each group (user)
    weighted by its number of impressions, over the groups that have both
    clicks and non-clicks (the others have no AUC and are left out)."""
    scores, labels = _check(scores, labels, 'gauc')
    groups = torch.as_tensor(groups).reshape(-1)
    if groups.numel() != scores.numel():
        raise ValueError(f"gauc: {groups.numel()} groups for "
                         f"{scores.numel()} scores")
    _, g = torch.unique(groups, return_inverse=True)
    ranks = _tied_ranks(g, scores)
    m = int(g.max()) + 1
    n = torch.bincount(g, minlength=m).double()
    pos = torch.zeros(m, dtype=torch.float64).index_add_(0, g, labels)
    rank_pos = torch.zeros(m, dtype=torch.float64).index_add_(
        0, g, ranks * labels)
    neg = n - pos
    ok = (pos > 0) & (neg > 0)
    if not bool(ok.any()):
        raise ValueError("gauc: no group has both clicks and non-clicks")
    per = (rank_pos[ok] - pos[ok] * (pos[ok] + 1) / 2) / (pos[ok] * neg[ok])
    return float((per * n[ok]).sum() / n[ok].sum())


def batch_mean_auc(scores: Tensor, labels: Tensor, batch_size: int,
                   drop_last: bool = True) -> float:
    r"""The mean of per-batch AUCs over consecutive batches of
    :obj:`batch_size` impressions in the given order, as the RippleNet and
    KGCN code report "AUC" (KGCN's evaluation skips the last partial batch:
    :obj:`drop_last=True`). Not the AUC of the whole set: it never compares
    impressions of different batches."""
    scores, labels = _check(scores, labels, 'batch_mean_auc')
    if batch_size <= 0:
        raise ValueError(f"batch_mean_auc: batch_size must be positive, got "
                         f"{batch_size}")
    n = scores.numel()
    end = n - n % batch_size if drop_last else n
    if end == 0:
        raise ValueError(f"batch_mean_auc: fewer than {batch_size} "
                         f"impressions and drop_last=True")
    values = [auc(scores[i:i + batch_size], labels[i:i + batch_size])
              for i in range(0, end, batch_size)]
    return sum(values) / len(values)


def _probabilities(pred: Tensor, logits: bool, where: str) -> Tensor:
    if logits:
        return torch.sigmoid(pred)
    if bool(((pred < 0) | (pred > 1)).any()):
        raise ValueError(f"{where}: probabilities must lie in [0, 1] (pass "
                         f"logits=True for logits)")
    return pred


def log_loss(pred: Tensor, labels: Tensor, logits: bool = False,
             eps: float = 1e-7) -> float:
    r"""The mean binary cross-entropy
    :math:`-\frac{1}{n}\sum y \log p + (1 - y) \log(1 - p)`; probabilities
    are clipped to :math:`[\epsilon, 1 - \epsilon]`, logits are used
    exactly (:func:`torch.nn.functional.binary_cross_entropy_with_logits`).
    """
    pred, labels = _check(pred, labels, 'log_loss')
    if logits:
        return float(torch.nn.functional.binary_cross_entropy_with_logits(
            pred, labels))
    p = _probabilities(pred, False, 'log_loss').clamp(eps, 1 - eps)
    return float(-(labels * p.log() + (1 - labels) * (1 - p).log()).mean())


def calibration(pred: Tensor, labels: Tensor, bins: int = 10,
                logits: bool = False) -> Dict[str, object]:
    r"""Predicted against observed click rate in :obj:`bins` equal-count bins
    of the predicted probability (deciles by default, in increasing order of
    the prediction), and the expected calibration error
    :math:`\sum_b \frac{n_b}{n} |\bar p_b - \bar y_b|`.

    Returns:
        dict: :obj:`'predicted'`, :obj:`'observed'` and :obj:`'count'` (lists,
        one entry a bin) and :obj:`'ece'` (float).
    """
    pred, labels = _check(pred, labels, 'calibration')
    p = _probabilities(pred, logits, 'calibration')
    if bins <= 0:
        raise ValueError(f"calibration: bins must be positive, got {bins}")
    order = torch.argsort(p, stable=True)
    p, y = p[order], labels[order]
    n = p.numel()
    # Bin b holds sorted positions [b n / bins, (b + 1) n / bins).
    which = torch.arange(n) * bins // n
    count = torch.bincount(which, minlength=bins).double()
    sum_p = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, p)
    sum_y = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, y)
    keep = count > 0
    predicted, observed = sum_p[keep] / count[keep], sum_y[keep] / count[keep]
    ece = float(((predicted - observed).abs() * count[keep]).sum() / n)
    return {'predicted': predicted.tolist(), 'observed': observed.tolist(),
            'count': count[keep].long().tolist(), 'ece': ece}


def ctr_metrics(pred: Tensor, labels: Tensor, groups: Optional[Tensor] = None,
                logits: bool = False) -> Dict[str, float]:
    r"""AUC, log loss, the expected calibration error of deciles, the mean
    predicted and observed click rate, and GAUC when :obj:`groups` (e.g.
    user ids) are given."""
    pred = torch.as_tensor(pred).reshape(-1).double()
    labels = torch.as_tensor(labels).reshape(-1)
    p = torch.sigmoid(pred) if logits else pred
    out = {'auc': auc(pred, labels), 'logloss': log_loss(pred, labels,
                                                         logits=logits),
           'ece': calibration(p, labels)['ece'],
           'mean_pred': float(p.mean()),
           'ctr': float(labels.double().mean())}
    if groups is not None:
        out['gauc'] = gauc(pred, labels, groups)
    return out
