r"""The evaluation protocol of the official GTE code (:obj:`HKUDS/GTE`,
:obj:`main.py`), as a compatibility mode of the per-user evaluator.

The official code walks over *all* user ids :math:`0, \dots, U-1` in order,
in consecutive batches of 256 ids; in every batch it averages Recall@K and
NDCG@K over the users of the batch that have test items (the others are
skipped), and it reports the mean of these batch means. Users in small
batches thus weigh more than in the per-user mean that
:class:`~pyg_recsys.metrics.Evaluator` reports. Its ranking gives training
items the score 0 (instead of :math:`-\infty`) and sorts with a non-stable
sort, which matters only among zero-score items; the evaluator's exact
ranking (training items never ranked, ties by item id) is used here, so the
two can differ by such tie orders.
"""
from typing import Callable, Dict, Optional

import torch
from torch import Tensor

__all__ = ['batch_mean_of_means', 'gte_protocol_metrics']

GTE_BATCH_SIZE = 256


def batch_mean_of_means(values: Tensor, users: Tensor,
                        batch_size: int = GTE_BATCH_SIZE) -> float:
    r"""The mean over user-id batches of the mean of :obj:`values` in each.

    The user of :obj:`values[n]` is :obj:`users[n]`, and it belongs to batch
    :obj:`users[n] // batch_size` (batches of consecutive ids over all
    users, as in the official GTE code, whatever the order of
    :obj:`users`). Batches without any user in :obj:`users` are skipped
    (the official code would divide by zero there).

    Args:
        values (torch.Tensor): A per-user metric, shape :obj:`[N]` (e.g. one
            entry of :meth:`Evaluator.metrics_of(index, reduce=False)
            <pyg_recsys.metrics.Evaluator.metrics_of>`).
        users (torch.Tensor): The distinct user id of every value, shape
            :obj:`[N]`.
        batch_size (int, optional): Ids per batch. (default: :obj:`256`)

    Returns:
        float: the mean of batch means (:obj:`0.0` for no users).
    """
    values = torch.as_tensor(values)
    users = torch.as_tensor(users)
    if values.dim() != 1 or users.dim() != 1 or \
            values.numel() != users.numel():
        raise ValueError(f"batch_mean_of_means: values and users must be 1-D "
                         f"of the same length, got {tuple(values.shape)} and "
                         f"{tuple(users.shape)}")
    if users.is_floating_point() or users.dtype == torch.bool:
        raise TypeError("batch_mean_of_means: user ids must be integers")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_mean_of_means: batch_size must be positive, "
                         f"got {batch_size}")
    if users.numel() == 0:
        return 0.0
    users = users.long().cpu()
    if int(users.min()) < 0:
        raise ValueError("batch_mean_of_means: user ids must be "
                         "non-negative")
    if torch.unique(users).numel() != users.numel():
        raise ValueError("batch_mean_of_means: user ids must be distinct")
    batch = users // int(batch_size)
    num_batches = int(batch.max()) + 1
    vals = values.detach().cpu().to(torch.float64)
    total = torch.zeros(num_batches, dtype=torch.float64).index_add_(
        0, batch, vals)
    count = torch.bincount(batch, minlength=num_batches)
    present = count > 0
    return float((total[present] / count[present]).mean())


def gte_protocol_metrics(evaluator, index: Optional[Tensor] = None,
                         score_fn: Optional[Callable[[Tensor], Tensor]] = None,
                         batch_size: int = GTE_BATCH_SIZE
                         ) -> Dict[str, float]:
    r"""Every metric of :obj:`evaluator` in the official GTE protocol
    (mean of the 256-user-id batch means, see :func:`batch_mean_of_means`).

    Args:
        evaluator (Evaluator): The per-user evaluator of the split.
        index (torch.Tensor, optional): Ranked lists from
            :meth:`Evaluator.rank` / :meth:`Evaluator.rank_scores`.
        score_fn (callable, optional): Ranked here by
            :meth:`Evaluator.rank_scores` when :obj:`index` is not given.
        batch_size (int, optional): Ids per batch. (default: :obj:`256`)

    Returns:
        Dict[str, float]: :obj:`'{metric}@{K}'` to its batch mean of means.
    """
    if index is None:
        if score_fn is None:
            raise ValueError("gte_protocol_metrics: pass the ranked lists "
                             "'index' or a 'score_fn'")
        index = evaluator.rank_scores(score_fn)
    per_user = evaluator.metrics_of(index, reduce=False)
    return {key: batch_mean_of_means(val, evaluator.users, batch_size)
            for key, val in per_user.items()}
