r"""Full-ranking evaluation of next-item prediction: one target per user,
every item ranked."""
from typing import Callable, Dict, Optional, Sequence

import torch
from torch import Tensor

HISTORY = ('mask', 'zero', 'keep')


@torch.no_grad()
def target_ranks(score_fn: Callable[[int, int], Tensor], target: Tensor,
                 history: Optional[Tensor] = None, mode: str = 'mask',
                 batch_size: int = 1024) -> Tensor:
    r"""The 0-based rank of every target among all items.

    The rank of target :math:`j` of row :math:`b` is the number of items
    scored above it plus the number of lower-id items scored the same (ties
    go to the lower id, exactly; no sort is needed).

    Args:
        score_fn (callable): :obj:`score_fn(start, end)` returns the scores
            of rows :obj:`start:end` over all items, :obj:`[end - start, I]`.
        target (torch.Tensor): The target item of each row, :obj:`[N]`.
        history (torch.Tensor, optional): The items of each row's history,
            :obj:`[N, L]` padded with :obj:`-1`. (default: :obj:`None`)
        mode (str, optional): What happens to history items:
            :obj:`'mask'` (never ranked; this package's protocol; a target
            that is also in the history stays ranked), :obj:`'zero'` (their
            score is set to 0, as the S3-Rec / ICLRec family of codes does;
            those codes then break ties arbitrarily, here by lower id) or
            :obj:`'keep'` (scored as any item, as RecBole does).
            (default: :obj:`'mask'`)
        batch_size (int, optional): Rows per scoring batch.
            (default: :obj:`1024`)
    """
    if mode not in HISTORY:
        raise ValueError(f"target_ranks: mode must be one of {HISTORY}, got "
                         f"'{mode}'")
    target = torch.as_tensor(target, dtype=torch.long).view(-1)
    n = target.numel()
    ranks = torch.empty(n, dtype=torch.long)
    for start in range(0, n, int(batch_size)):
        end = min(start + int(batch_size), n)
        scores = score_fn(start, end).float().clone()
        if scores.dim() != 2 or scores.size(0) != end - start:
            raise ValueError(f"target_ranks: score_fn must return "
                             f"[{end - start}, I], got {tuple(scores.shape)}")
        if bool(torch.isnan(scores).any()):
            raise ValueError("target_ranks: the scores contain NaN")
        t = target[start:end].to(scores.device)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= scores.size(1)):
            raise ValueError(f"target_ranks: targets must lie in "
                             f"[0, {scores.size(1)})")
        if history is not None and mode != 'keep':
            h = history[start:end].to(scores.device)
            rows = torch.arange(end - start, device=scores.device).view(
                -1, 1).expand_as(h)
            valid = (h >= 0) & (h != t.view(-1, 1))
            fill = float('-inf') if mode == 'mask' else 0.0
            scores[rows[valid], h[valid]] = fill
        own = scores.gather(1, t.view(-1, 1))
        ids = torch.arange(scores.size(1), device=scores.device).view(1, -1)
        above = (scores > own) | ((scores == own) & (ids < t.view(-1, 1)))
        ranks[start:end] = above.sum(1).cpu()
    return ranks


@torch.no_grad()
def future_recall(score_fn: Callable[[int, int], Tensor], future: Tensor,
                  k: int = 20, history: Optional[Tensor] = None,
                  mode: str = 'mask', batch_size: int = 1024) -> Tensor:
    r"""Recall@K of several future items per row (the long time scale):
    the share of the distinct items of :obj:`future` (:obj:`[N, H]`, padded
    with :obj:`-1`) found in the top :obj:`k` of the row's scores, ties to
    the lower id; history items are handled as in :func:`target_ranks`
    (a future item that is also in the history stays ranked). A row
    without future items gets NaN.

    Returns:
        torch.Tensor: :obj:`[N]` recalls in :math:`[0, 1]`.
    """
    if mode not in HISTORY:
        raise ValueError(f"future_recall: mode must be one of {HISTORY}, got "
                         f"'{mode}'")
    future = torch.as_tensor(future, dtype=torch.long)
    n = future.size(0)
    out = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, int(batch_size)):
        end = min(start + int(batch_size), n)
        scores = score_fn(start, end).float().clone()
        f = future[start:end].to(scores.device)
        if history is not None and mode != 'keep':
            h = history[start:end].to(scores.device)
            rows = torch.arange(end - start, device=scores.device).view(
                -1, 1).expand_as(h)
            inside = (h.unsqueeze(-1) == f.unsqueeze(1)).any(-1)
            valid = (h >= 0) & ~inside
            scores[rows[valid], h[valid]] = float('-inf') \
                if mode == 'mask' else 0.0
        # Ties to the lower id: a stable sort of the negated scores.
        top = torch.sort(-scores, dim=1, stable=True)[1][:, :int(k)]
        found = torch.zeros_like(scores, dtype=torch.bool)
        found.scatter_(1, top, True)
        wanted = torch.zeros_like(found)
        rows = torch.arange(end - start, device=scores.device).view(
            -1, 1).expand_as(f)
        wanted[rows[f >= 0], f[f >= 0]] = True
        count = wanted.sum(1).double()
        hits = (wanted & found).sum(1).double()
        out[start:end] = (hits / count).cpu()
    return out


def rank_metrics(ranks: Tensor, ks: Sequence[int] = (5, 10, 20)
                 ) -> Dict[str, float]:
    r"""HitRate@K and NDCG@K of single-target ranks (0-based), averaged:
    :math:`\mathrm{HR@K} = [r < K]`, :math:`\mathrm{NDCG@K} = [r < K] /
    \log_2(r + 2)`. With one target, Recall@K equals HR@K."""
    ks = _check_ks(ks)
    ranks = torch.as_tensor(ranks).double()
    out = {}
    n = max(ranks.numel(), 1)
    for k in ks:
        hit = ranks < int(k)
        out[f'hit@{k}'] = float(hit.sum()) / n
        gain = torch.where(hit, 1.0 / torch.log2(ranks + 2), 0.0)
        out[f'ndcg@{k}'] = float(gain.sum()) / n
    return out


def _check_ks(ks) -> Sequence[int]:
    ks = [int(k) for k in ks]
    if not ks or min(ks) <= 0:
        raise ValueError(f"ks must be positive cut-offs, got {ks}")
    return ks

