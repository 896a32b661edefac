r"""Per-user train / validation / test splits of interaction pairs.

All splits are vectorised in PyTorch (sorting and counting, no Python loop
over users), seeded with a :class:`torch.Generator`, and return three pair
tensors :obj:`(train, valid, test)` of shape :obj:`[2, *]` that keep the
order of the input (the validation tensor may be empty). Together they hold
every input pair exactly once.

Repeated :obj:`(user, item)` pairs in the input would end up in two splits
(a leak), so they are dropped with a warning, keeping the first occurrence
(for :func:`temporal_split` and :func:`leave_one_out` with timestamps, the
earliest one).
"""
import math
import warnings
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['random_split', 'temporal_split', 'leave_one_out']

Splits = Tuple[Tensor, Tensor, Tensor]


def _check_pairs(fn: str, pairs: Tensor, num_users: int) -> Tensor:
    pairs = torch.as_tensor(pairs)
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"{fn}: 'pairs' must have shape [2, E] (user row, "
                         f"item row), got {tuple(pairs.shape)}")
    if pairs.is_floating_point() or pairs.is_complex() or \
            pairs.dtype == torch.bool:
        raise TypeError(f"{fn}: 'pairs' must hold integer ids, got "
                        f"{pairs.dtype}")
    pairs = pairs.to(device='cpu', dtype=torch.int64)
    if int(num_users) <= 0:
        raise ValueError(f"{fn}: 'num_users' must be positive, got "
                         f"{num_users}")
    if pairs.numel() > 0:
        if int(pairs.min()) < 0:
            raise ValueError(f"{fn}: 'pairs' holds a negative id "
                             f"({int(pairs.min())})")
        if int(pairs[0].max()) >= num_users:
            raise ValueError(f"{fn}: user id {int(pairs[0].max())} is out of "
                             f"range for num_users={num_users}")
    return pairs


def _check_ratios(fn: str, ratios: Sequence[float]) -> Tuple[float, float]:
    ratios = [float(r) for r in ratios]
    if len(ratios) != 3 or any(not math.isfinite(r) or r < 0
                               for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"{fn}: 'ratios' must be three non-negative "
                         f"numbers (train, valid, test) with a positive sum, "
                         f"got {ratios}")
    total = sum(ratios)
    return ratios[1] / total, ratios[2] / total


def _check_timestamps(fn: str, timestamps, num_pairs: int) -> Tensor:
    ts = torch.as_tensor(timestamps).cpu()
    if ts.dim() != 1 or ts.numel() != num_pairs:
        raise ValueError(f"{fn}: 'timestamps' must have shape [{num_pairs}] "
                         f"(one per pair), got {tuple(ts.shape)}")
    if ts.is_floating_point() and bool(torch.isnan(ts).any()):
        raise ValueError(f"{fn}: 'timestamps' holds NaN")
    return ts


def _first_occurrence(fn: str, pairs: Tensor, order: Tensor) -> Tensor:
    r"""A mask that keeps one occurrence of every repeated pair.

    The occurrence kept is the one first in :obj:`order` (a permutation of
    the pair indices).
    """
    num = pairs.size(1)
    keep = torch.ones(num, dtype=torch.bool)
    if num == 0:
        return keep
    num_items = int(pairs[1].max()) + 1
    keys = pairs[0] * num_items + pairs[1]
    _, inverse = torch.unique(keys, return_inverse=True)
    rank = torch.empty(num, dtype=torch.int64)
    rank[order] = torch.arange(num)
    best = torch.full((int(inverse.max()) + 1, ), num, dtype=torch.int64)
    best = best.scatter_reduce(0, inverse, rank, reduce='amin')
    keep = rank == best[inverse]
    dropped = num - int(keep.sum())
    if dropped > 0:
        warnings.warn(f"{fn}: {dropped} repeated (user, item) pairs were "
                      f"dropped, keeping the first occurrence of each")
    return keep


def _group_rank(users: Tensor, num_users: int) -> Tuple[Tensor, Tensor]:
    r"""Positions within, and sizes of, groups of sorted user ids.

    Returns the 0-based position of every entry within its user and the
    number of entries of its user.
    """
    counts = torch.bincount(users, minlength=num_users)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(users.numel()) - start[users]
    return rank, counts[users]


def _ratio_sizes(n: Tensor, valid_ratio: float,
                 test_ratio: float) -> Tuple[Tensor, Tensor]:
    r"""Validation and test sizes of users with :obj:`n` interactions."""
    # The tiny slack keeps e.g. 0.15 * 20 from flooring to 2 through a
    # rounding error of the ratio.
    n_valid = torch.floor(valid_ratio * n.double() + 1e-9).long()
    n_test = torch.floor(test_ratio * n.double() + 1e-9).long()
    if test_ratio > 0:
        n_test = torch.where((n >= 2) & (n_test == 0), 1, n_test)
    if valid_ratio > 0:
        n_valid = torch.where((n >= 3) & (n_valid == 0), 1, n_valid)
    n_valid = torch.minimum(n_valid, n - n_test)
    return n_valid, n_test


def _scatter_parts(pairs: Tensor, keep: Tensor, order: Tensor,
                   part: Tensor) -> Splits:
    r"""Returns the pairs of parts 0, 1 and 2, in input order.

    :obj:`part` holds the part of every kept pair listed in :obj:`order`.
    """
    where = torch.empty_like(part)
    where[order] = part
    orig = torch.nonzero(keep).view(-1)
    return tuple(pairs[:, orig[where == k]] for k in range(3))  # type: ignore


def _assign(pairs: Tensor, keep: Tensor, order: Tensor, num_users: int,
            valid_ratio: float, test_ratio: float) -> Splits:
    r"""Cuts every user's kept interactions into parts by ratio.

    :obj:`order` ranks the kept pairs, grouping users ascending.
    """
    rank, n = _group_rank(pairs[0, keep][order], num_users)
    n_valid, n_test = _ratio_sizes(n, valid_ratio, test_ratio)
    n_train = n - n_valid - n_test
    part = torch.zeros(order.numel(), dtype=torch.int64)
    part[rank >= n_train] = 1
    part[rank >= n_train + n_valid] = 2
    return _scatter_parts(pairs, keep, order, part)


def _sort_by_user(users: Tensor, order: Tensor) -> Tensor:
    return order[torch.sort(users[order], stable=True)[1]]


def _time_order(pairs: Tensor, timestamps: Tensor) -> Tensor:
    r"""Sorts by (user, timestamp, item), ascending."""
    order = torch.sort(pairs[1], stable=True)[1]
    order = order[torch.sort(timestamps[order], stable=True)[1]]
    return _sort_by_user(pairs[0], order)


def random_split(pairs: Tensor, num_users: int,
                 ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> Splits:
    r"""Splits every user's interactions at random by ratio.

    Mimics RecBole's :obj:`RS: [0.8, 0.1, 0.1]` with :obj:`group_by: user`:
    each user's interactions are shuffled and cut. A user with :math:`n`
    interactions gets

    * :math:`n_{valid} = \lfloor r_{valid} \cdot n \rfloor` and
      :math:`n_{test} = \lfloor r_{test} \cdot n \rfloor`;
    * if :math:`n \geq 3`, at least one validation and one test interaction
      (taken from train; only for a part with a positive ratio);
    * if :math:`n = 2`, one test interaction (if :math:`r_{test} > 0`);
    * if :math:`n = 1`, everything in train;

    and the rest, :math:`n - n_{valid} - n_{test}`, in train. Ratios are
    normalised to sum to one; the floors allow a :math:`10^{-9}` slack for
    floating-point error, and :math:`n_{valid}` is capped at
    :math:`n - n_{test}`. With the default ratios, e.g. :math:`n = 25` gives
    21 / 2 / 2. Repeated pairs are dropped with a warning (the first
    occurrence is kept).

    Args:
        pairs (torch.Tensor): :obj:`(user, item)` pairs, shape :obj:`[2, E]`.
        num_users (int): The number of users (user ids lie in
            :obj:`[0, num_users)`).
        ratios (Sequence[float], optional): The train, validation and test
            ratios. (default: :obj:`(0.8, 0.1, 0.1)`)
        seed (int, optional): Seed of the :class:`torch.Generator` that
            shuffles. (default: :obj:`0`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor): The train, validation
        and test pairs, each :obj:`[2, *]`, in input order.
    """
    fn = 'random_split'
    pairs = _check_pairs(fn, pairs, num_users)
    valid_ratio, test_ratio = _check_ratios(fn, ratios)
    keep = _first_occurrence(fn, pairs, torch.arange(pairs.size(1)))
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(int(keep.sum()), generator=gen)
    order = _sort_by_user(pairs[0, keep], order)
    return _assign(pairs, keep, order, num_users, valid_ratio, test_ratio)


def temporal_split(pairs: Tensor, timestamps: Tensor, num_users: int,
                   ratios: Sequence[float] = (0.8, 0.1, 0.1)) -> Splits:
    r"""Splits every user's interactions by time.

    Each user's interactions are ordered by timestamp (ties broken by item
    id, then by input position); the oldest go to train, the next to
    validation and the newest to test, with the sizes of
    :func:`random_split`. The split is deterministic.

    Args:
        pairs (torch.Tensor): :obj:`(user, item)` pairs, shape :obj:`[2, E]`.
        timestamps (torch.Tensor): The time of every pair, shape :obj:`[E]`.
        num_users (int): The number of users.
        ratios (Sequence[float], optional): The train, validation and test
            ratios. (default: :obj:`(0.8, 0.1, 0.1)`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor): The train, validation
        and test pairs, each :obj:`[2, *]`, in input order.
    """
    fn = 'temporal_split'
    pairs = _check_pairs(fn, pairs, num_users)
    ts = _check_timestamps(fn, timestamps, pairs.size(1))
    valid_ratio, test_ratio = _check_ratios(fn, ratios)
    keep = _first_occurrence(fn, pairs, _time_order(pairs, ts))
    order = _time_order(pairs[:, keep], ts[keep])
    return _assign(pairs, keep, order, num_users, valid_ratio, test_ratio)


def leave_one_out(pairs: Tensor, num_users: int,
                  timestamps: Optional[Tensor] = None,
                  seed: int = 0) -> Splits:
    r"""Leave-one-out split: one test and one validation item per user.

    With :obj:`timestamps`, each user's interactions are ordered by time
    (ties broken by item id); without, they are shuffled by a seeded
    :class:`torch.Generator`. Then, per user with :math:`n` interactions:

    * :math:`n \geq 3`: the last goes to test, the second-last to
      validation, the rest to train;
    * :math:`n = 2`: the last goes to test, the other to train;
    * :math:`n = 1`: the interaction stays in train.

    Args:
        pairs (torch.Tensor): :obj:`(user, item)` pairs, shape :obj:`[2, E]`.
        num_users (int): The number of users.
        timestamps (torch.Tensor, optional): The time of every pair, shape
            :obj:`[E]`. (default: :obj:`None`)
        seed (int, optional): Seed of the shuffle when :obj:`timestamps` is
            :obj:`None`. (default: :obj:`0`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor): The train, validation
        and test pairs, each :obj:`[2, *]`, in input order.
    """
    fn = 'leave_one_out'
    pairs = _check_pairs(fn, pairs, num_users)
    if timestamps is not None:
        ts = _check_timestamps(fn, timestamps, pairs.size(1))
        keep = _first_occurrence(fn, pairs, _time_order(pairs, ts))
        order = _time_order(pairs[:, keep], ts[keep])
    else:
        keep = _first_occurrence(fn, pairs, torch.arange(pairs.size(1)))
        gen = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(int(keep.sum()), generator=gen)
        order = _sort_by_user(pairs[0, keep], order)

    users = pairs[0, keep][order]
    rank, n = _group_rank(users, num_users)
    part = torch.zeros(order.numel(), dtype=torch.int64)
    part[(n >= 2) & (rank == n - 1)] = 2
    part[(n >= 3) & (rank == n - 2)] = 1
    return _scatter_parts(pairs, keep, order, part)
