r"""Time-ordered item sequences per user, their leave-one-out split and
padded batches, all built with tensor operations (no Python loop per
event)."""
import math
import os
import warnings
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from pyg_recsys.data.io import _read_lines


class SequenceSplit(NamedTuple):
    r"""A leave-one-out split of a :class:`SequenceData`.

    Attributes:
        train (SequenceData): Every sequence without its last two items
            (users with fewer than three items keep all of theirs).
        valid_users (torch.Tensor): The users evaluated on validation.
        valid_target (torch.Tensor): Their second-to-last item.
        test_users (torch.Tensor): The users evaluated on test.
        test_target (torch.Tensor): Their last item.
        full (SequenceData): The whole sequences; the input for a test
            target is everything before it (so it includes the validation
            item), for a validation target everything before that.
    """
    train: 'SequenceData'
    valid_users: Tensor
    valid_target: Tensor
    test_users: Tensor
    test_target: Tensor
    full: 'SequenceData'


class HorizonSplit(NamedTuple):
    r"""A time-window split of a :class:`SequenceData` for the two time
    scales: per user, the last :obj:`horizon` events are the test future
    and the :obj:`horizon` before them the validation future.

    Attributes:
        train (SequenceData): Everything before the validation future
            (users too short to evaluate keep all of theirs).
        valid_users (torch.Tensor): Users evaluated on validation.
        valid_end (torch.Tensor): Their input length: the validation future
            starts at this position of :obj:`full`.
        test_users (torch.Tensor): Users evaluated on test.
        test_end (torch.Tensor): Where their test future starts (the input
            includes the validation future).
        horizon (int): Events per future.
        full (SequenceData): The whole sequences.
    """
    train: 'SequenceData'
    valid_users: Tensor
    valid_end: Tensor
    test_users: Tensor
    test_end: Tensor
    horizon: int
    full: 'SequenceData'


CONTEXT_FEATURES = ('rating', 'skip', 'log_gap', 'hour_sin', 'hour_cos',
                    'weekday_sin', 'weekday_cos')


class SequenceData:
    r"""The item sequences of :math:`U` users over :math:`I` items, in time
    order, stored as CSR: the items of user :obj:`u` are
    :obj:`items[ptr[u]:ptr[u + 1]]`, oldest first.

    Args:
        ptr (torch.Tensor): Row pointers, shape :obj:`[U + 1]`, from 0 to
            :obj:`E`, non-decreasing.
        items (torch.Tensor): 0-based item ids, shape :obj:`[E]`.
        num_items (int): :math:`I`.
        timestamps (torch.Tensor, optional): One time per event, shape
            :obj:`[E]`, non-decreasing within every user. (default:
            :obj:`None`)
        name (str, optional): A display name. (default: :obj:`None`)
        ratings (torch.Tensor, optional): One rating per event, shape
            :obj:`[E]` (for the context features and the skip bit).
            (default: :obj:`None`)

    Raises:
        ValueError: On a malformed :obj:`ptr`, an item id outside
            :obj:`[0, I)`, or times that go backwards within a user (naming
            the user).
    """
    def __init__(self, ptr: Tensor, items: Tensor, num_items: int,
                 timestamps: Optional[Tensor] = None,
                 name: Optional[str] = None,
                 ratings: Optional[Tensor] = None):
        who = self.__class__.__name__
        ptr = torch.as_tensor(ptr, dtype=torch.long)
        items = torch.as_tensor(items)
        if items.is_floating_point() or items.dtype == torch.bool:
            raise TypeError(f"{who}: items must be integer ids, got "
                            f"{items.dtype}")
        items = items.long().view(-1)
        if ptr.dim() != 1 or ptr.numel() < 1 or int(ptr[0]) != 0 or \
                int(ptr[-1]) != items.numel() or bool((ptr.diff() < 0).any()):
            raise ValueError(f"{who}: ptr must rise from 0 to len(items) = "
                             f"{items.numel()}")
        if int(num_items) <= 0:
            raise ValueError(f"{who}: num_items must be positive, got "
                             f"{num_items}")
        if items.numel() and (int(items.min()) < 0
                              or int(items.max()) >= int(num_items)):
            raise ValueError(f"{who}: item ids must lie in [0, {num_items}), "
                             f"got min {int(items.min())}, max "
                             f"{int(items.max())}")
        if timestamps is not None:
            timestamps = torch.as_tensor(timestamps, dtype=torch.float64)
            if timestamps.shape != items.shape:
                raise ValueError(f"{who}: {timestamps.numel()} timestamps for "
                                 f"{items.numel()} events")
            if bool(torch.isnan(timestamps).any()):
                raise ValueError(f"{who}: timestamps contain NaN")
            row = self._row_of(ptr)
            back = (timestamps.diff() < 0) & (row[1:] == row[:-1])
            if bool(back.any()):
                user = int(row[1:][back][0])
                raise ValueError(f"{who}: the events of user {user} are not "
                                 f"in time order")
        if ratings is not None:
            ratings = torch.as_tensor(ratings, dtype=torch.float)
            if ratings.shape != items.shape:
                raise ValueError(f"{who}: {ratings.numel()} ratings for "
                                 f"{items.numel()} events")
            if not bool(torch.isfinite(ratings).all()):
                raise ValueError(f"{who}: ratings contain NaN or infinite "
                                 f"values")
        self.ptr, self.items, self.timestamps = ptr, items, timestamps
        self.ratings = ratings
        self.num_items = int(num_items)
        self.name = name

    @staticmethod
    def _row_of(ptr: Tensor) -> Tensor:
        return torch.repeat_interleave(torch.arange(ptr.numel() - 1),
                                       ptr.diff())

    @property
    def num_users(self) -> int:
        return self.ptr.numel() - 1

    @property
    def num_events(self) -> int:
        return self.items.numel()

    @property
    def lengths(self) -> Tensor:
        r"""The length of every sequence, shape :obj:`[U]`."""
        return self.ptr.diff()

    def sequence(self, user: int) -> Tensor:
        r"""The items of :obj:`user`, oldest first."""
        return self.items[self.ptr[user]:self.ptr[user + 1]]

    # ------------------------------------------------------------------
    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]],
                   num_items: Optional[int] = None,
                   name: Optional[str] = None) -> 'SequenceData':
        r"""From one list of 0-based item ids per user, oldest first."""
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
        ptr = torch.zeros(lengths.numel() + 1, dtype=torch.long)
        torch.cumsum(lengths, 0, out=ptr[1:])
        items = torch.tensor([i for s in sequences for i in s],
                             dtype=torch.long)
        if num_items is None:
            num_items = int(items.max()) + 1 if items.numel() else 1
        return cls(ptr, items, num_items, name=name)

    @classmethod
    def from_interactions(cls, users: Tensor, items: Tensor,
                          timestamps: Tensor, num_users: int, num_items: int,
                          name: Optional[str] = None,
                          ratings: Optional[Tensor] = None
                          ) -> 'SequenceData':
        r"""From interaction columns in any order: each user's events are
        sorted by time, ties by item id (a stable, documented order).
        :obj:`ratings`, when given, follow their events."""
        users, items = torch.as_tensor(users).long(), \
            torch.as_tensor(items).long()
        timestamps = torch.as_tensor(timestamps, dtype=torch.float64)
        if not users.shape == items.shape == timestamps.shape:
            raise ValueError("SequenceData.from_interactions: users, items "
                             "and timestamps must have the same length")
        if users.numel() and (int(users.min()) < 0
                              or int(users.max()) >= num_users):
            raise ValueError(f"SequenceData.from_interactions: user ids must "
                             f"lie in [0, {num_users})")
        order = torch.argsort(items, stable=True)
        order = order[torch.argsort(timestamps[order], stable=True)]
        order = order[torch.argsort(users[order], stable=True)]
        ptr = torch.zeros(num_users + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(users, minlength=num_users), 0,
                     out=ptr[1:])
        if ratings is not None:
            ratings = torch.as_tensor(ratings, dtype=torch.float).view(-1)
            if ratings.numel() != users.numel():
                raise ValueError("SequenceData.from_interactions: one rating "
                                 "per interaction is needed")
            ratings = ratings[order]
        return cls(ptr, items[order], num_items, timestamps[order], name=name,
                   ratings=ratings)

    # ------------------------------------------------------------------
    def _take(self, keep: Tensor) -> 'SequenceData':
        r"""The events where :obj:`keep` is true, per user."""
        counts = torch.zeros(self.num_users, dtype=torch.long).index_add_(
            0, self._row_of(self.ptr), keep.long())
        ptr = torch.zeros_like(self.ptr)
        torch.cumsum(counts, 0, out=ptr[1:])
        ts = None if self.timestamps is None else self.timestamps[keep]
        rt = None if self.ratings is None else self.ratings[keep]
        return SequenceData(ptr, self.items[keep], self.num_items, ts,
                            name=self.name, ratings=rt)

    def _positions(self) -> Tensor:
        r"""The 0-based position of every event within its sequence."""
        return torch.arange(self.num_events) - \
            self.ptr[:-1].repeat_interleave(self.lengths)

    def _without_last(self, n: int, users: Tensor) -> 'SequenceData':
        r"""The sequences without their last :obj:`n` events where the
        per-user mask :obj:`users` holds, whole elsewhere."""
        lengths = self.lengths
        cut = users.repeat_interleave(lengths)
        return self._take(~cut | (self._positions() <
                                  lengths.repeat_interleave(lengths) - n))

    def leave_one_out(self) -> SequenceSplit:
        r"""The last item of every user is the test target, the one before
        the validation target, the rest is for training. Users with fewer
        than three items are not evaluated (a warning counts them); users
        with none raise :class:`ValueError`."""
        lengths = self.lengths
        if bool((lengths == 0).any()):
            user = int((lengths == 0).nonzero()[0])
            raise ValueError(f"{self.__class__.__name__}.leave_one_out: user "
                             f"{user} has an empty sequence")
        short = lengths < 3
        if bool(short.any()):
            warnings.warn(f"leave_one_out: {int(short.sum())} users with "
                          f"fewer than 3 items are trained on but not "
                          f"evaluated")
        users = (~short).nonzero().view(-1)
        last = self.ptr[1:][users] - 1
        return SequenceSplit(self._without_last(2, ~short), users,
                             self.items[last - 1],
                             users, self.items[last], self)

    def padded(self, users: Tensor, end: Optional[Tensor] = None,
               max_len: int = 50, pad: int = -1) -> Tuple[Tensor, Tensor]:
        r"""The last :obj:`max_len` items of every user in :obj:`users` before
        position :obj:`end` (exclusive; default: the sequence's end),
        left-aligned and padded on the right with :obj:`pad`.

        Returns:
            (torch.Tensor, torch.Tensor): items :obj:`[B, L]` with
            :math:`L \leq` :obj:`max_len` the longest window, and lengths
            :obj:`[B]`.
        """
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        start = self.ptr[users]
        stop = self.ptr[users + 1] if end is None else start + \
            torch.as_tensor(end, dtype=torch.long).view(-1)
        return _windows(self.items, start, stop, max_len, pad)

    def values_padded(self, values: Tensor, users: Tensor,
                      end: Optional[Tensor] = None, max_len: int = 50,
                      pad: float = 0.0) -> Tensor:
        r"""Per-event :obj:`values` (:obj:`[E]` or :obj:`[E, C]`, e.g.
        :meth:`context`) in the windows of :meth:`padded` (same arguments),
        padded with :obj:`pad`: :obj:`[B, L]` or :obj:`[B, L, C]`."""
        if values.size(0) != self.num_events:
            raise ValueError(f"values_padded: {values.size(0)} values for "
                             f"{self.num_events} events")
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        start = self.ptr[users]
        stop = self.ptr[users + 1] if end is None else start + \
            torch.as_tensor(end, dtype=torch.long).view(-1)
        index, valid, _ = _window_index(start, stop, max_len,
                                        self.num_events)
        out = values[index]
        shape = valid.shape + (1, ) * (out.dim() - 2)
        return out.masked_fill(~valid.view(shape), pad)

    def future(self, users: Tensor, end: Tensor, horizon: int,
               skip: Optional[Tensor] = None) -> Tensor:
        r"""The (at most) :obj:`horizon` items from position :obj:`end` on,
        :obj:`[B, horizon]` padded with :obj:`-1`; events marked in the
        per-event mask :obj:`skip` (:meth:`skips`) are left out (their
        slots padded), since a skipped item is never a target."""
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        end = torch.as_tensor(end, dtype=torch.long).view(-1)
        start = self.ptr[users] + end
        stop = torch.minimum(start + int(horizon), self.ptr[users + 1])
        index, valid, _ = _window_index(start, stop, horizon,
                                        self.num_events)
        if skip is not None:
            valid = valid & ~skip[index]
        out = self.items[index].masked_fill(~valid, -1)
        if out.size(1) < int(horizon):
            out = torch.nn.functional.pad(out, (0, int(horizon) -
                                                out.size(1)), value=-1)
        return out

    def skips(self, threshold: float = 2.0) -> Tensor:
        r"""The skip bit of every event, :obj:`rating <= threshold`
        (:obj:`[E]`, all false without ratings). A skipped event is input,
        never a target."""
        if self.ratings is None:
            return torch.zeros(self.num_events, dtype=torch.bool)
        return self.ratings <= float(threshold)

    def context(self, features: Sequence[str] = CONTEXT_FEATURES,
                rating_scale: float = 5.0,
                skip_threshold: float = 2.0) -> Tensor:
        r"""Context features of every event, :obj:`[E, len(features)]`
        (float), from :obj:`CONTEXT_FEATURES`:

        * :obj:`'rating'`: the rating divided by :obj:`rating_scale`;
        * :obj:`'skip'`: 1 when the rating is at most
          :obj:`skip_threshold`;
        * :obj:`'log_gap'`: :math:`\log(1 + \Delta / 1\,\text{h}) /
          \log(1 + 8760)`, :math:`\Delta` the seconds since the user's
          previous event (0 for the first), so that a year is 1;
        * :obj:`'hour_sin'`, :obj:`'hour_cos'`, :obj:`'weekday_sin'`,
          :obj:`'weekday_cos'`: the hour of the day and the day of the week
          (UTC, timestamps in Unix seconds) on the circle.

        Raises:
            ValueError: For an unknown feature, or one whose ratings or
            timestamps the data lacks.
        """
        features = tuple(features)
        unknown = [f for f in features if f not in CONTEXT_FEATURES]
        if unknown:
            raise ValueError(f"context: unknown feature(s) {unknown} "
                             f"(available: {CONTEXT_FEATURES})")
        if self.ratings is None and {'rating', 'skip'} & set(features):
            raise ValueError("context: 'rating' and 'skip' need ratings; "
                             "this data has none")
        if self.timestamps is None and any(
                f not in ('rating', 'skip') for f in features):
            raise ValueError("context: the time features need timestamps; "
                             "this data has none")
        cols = []
        t = self.timestamps
        for f in features:
            if f == 'rating':
                cols.append(self.ratings / float(rating_scale))
            elif f == 'skip':
                cols.append(self.skips(skip_threshold).float())
            elif f == 'log_gap':
                gap = torch.zeros(self.num_events, dtype=torch.float64)
                if self.num_events > 1:
                    row = self._row_of(self.ptr)
                    same = row[1:] == row[:-1]
                    gap[1:] = torch.where(same, t.diff(), 0.0)
                cols.append(torch.log1p(gap / 3600.0) / math.log1p(8760.0))
            else:
                period = 86400.0 if f.startswith('hour') else 7 * 86400.0
                # 1970-01-01 was a Thursday: shift so that Monday 0:00 is 0.
                shift = 0.0 if f.startswith('hour') else 3 * 86400.0
                angle = 2 * math.pi * torch.remainder(t + shift, period) / \
                    period
                cols.append(torch.sin(angle) if f.endswith('sin')
                            else torch.cos(angle))
        if not cols:
            return torch.zeros(self.num_events, 0)
        return torch.stack([c.float() for c in cols], dim=1)

    def horizon_split(self, horizon: int = 10) -> HorizonSplit:
        r"""The time-window split of :class:`HorizonSplit`. Users with fewer
        than :obj:`2 * horizon + 1` events (none, too) are trained on but
        not evaluated (a warning counts them)."""
        horizon = int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon_split: horizon must be >= 1, got "
                             f"{horizon}")
        lengths = self.lengths
        ok = lengths >= 2 * horizon + 1
        if not bool(ok.any()):
            raise ValueError(f"horizon_split: no user has the "
                             f"{2 * horizon + 1} events a horizon of "
                             f"{horizon} needs")
        if not bool(ok.all()):
            warnings.warn(f"horizon_split: {int((~ok).sum())} users with "
                          f"fewer than {2 * horizon + 1} events are trained "
                          f"on but not evaluated")
        users = ok.nonzero().view(-1)
        return HorizonSplit(self._without_last(2 * horizon, ok), users,
                            lengths[users] - 2 * horizon, users,
                            lengths[users] - horizon, horizon, self)

    def next_item_examples(self, max_len: int = 50) -> Tuple[Tensor, Tensor,
                                                             Tensor]:
        r"""Every (history, next item) pair of the sequences: for each event
        that is not the first of its user, the user, the number of items
        before it, and the event's item. Feed the first two to
        :meth:`padded` as :obj:`(users, end)`.

        Returns:
            (torch.Tensor, torch.Tensor, torch.Tensor): users, history
            lengths and targets, each :obj:`[N]`.
        """
        position = self._positions()
        mask = position > 0
        users = self._row_of(self.ptr)[mask]
        return users, position[mask], self.items[mask]

    def __repr__(self) -> str:
        name = f"'{self.name}', " if self.name else ''
        return (f'{self.__class__.__name__}({name}num_users='
                f'{self.num_users}, num_items={self.num_items}, '
                f'events={self.num_events})')


def _window_index(start: Tensor, stop: Tensor, max_len: int,
                  num_events: int) -> Tuple[Tensor, Tensor, Tensor]:
    # Event positions of the last `max_len` events before `stop` of each
    # window (clamped in range where padded), their validity, the lengths.
    if int(max_len) <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    lengths = (stop - start).clamp(max=int(max_len))
    if bool((lengths < 0).any()):
        raise ValueError("a window ends before its sequence starts")
    width = max(int(lengths.max()) if lengths.numel() else 0, 1)
    first = stop - lengths
    index = first.view(-1, 1) + torch.arange(width).view(1, -1)
    valid = torch.arange(width).view(1, -1) < lengths.view(-1, 1)
    return index.clamp(0, max(num_events - 1, 0)), valid, lengths


def _windows(items: Tensor, start: Tensor, stop: Tensor, max_len: int,
             pad: int) -> Tuple[Tensor, Tensor]:
    index, valid, lengths = _window_index(start, stop, max_len, items.numel())
    out = items[index] if items.numel() else torch.zeros_like(index)
    return out.masked_fill(~valid, pad), lengths


# ----------------------------------------------------------------------------
_S3REC_FILES = {'beauty': 'Beauty', 'sports': 'Sports_and_Outdoors',
                'toys': 'Toys_and_Games', 'yelp-seq': 'Yelp'}


def read_sequences(path: str, id_base: int = 1,
                   name: Optional[str] = None) -> SequenceData:
    r"""Reads a sequence file of one line per user, :obj:`user item item
    ...`, items in time order (the S3-Rec / ICLRec format; ids start at
    :obj:`id_base`, and an id below it, e.g. a padding 0 in a 1-based
    file, is an error naming the line).

    Users are numbered in file order; the item count is the largest id.
    """
    path = os.fspath(path)
    lines = _read_lines(path)
    seqs: List[List[int]] = []
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        try:
            ids = [int(t) for t in parts]
        except ValueError:
            raise ValueError(f"{path}:{no}: ids must be integers") from None
        if len(ids) < 2:
            raise ValueError(f"{path}:{no}: user {ids[0]} has no items")
        if min(ids[1:]) < id_base:
            raise ValueError(f"{path}:{no}: item id {min(ids[1:])} is below "
                             f"the first id {id_base} (a padding id?)")
        seqs.append([i - id_base for i in ids[1:]])
    if not seqs:
        raise ValueError(f"{path}: no sequences")
    return SequenceData.from_lists(seqs, name=name)


def load_sequences(name: str, root: Optional[str] = None) -> SequenceData:
    r"""A named sequence data set: :obj:`'beauty'`, :obj:`'sports'`,
    :obj:`'toys'` or :obj:`'yelp-seq'` (the S3-Rec files, read from
    :obj:`<root>/seq-s3rec/`; item ids only), or :obj:`'ml-100k'`
    (MovieLens-100K ordered by timestamp, ties by item id, with ratings and
    timestamps for :meth:`SequenceData.context`; found or fetched as
    :func:`~pyg_recsys.data.load_dataset` does)."""
    from pyg_recsys.data import datasets
    key = name.lower()
    if key == 'ml-100k':
        pairs, rating, timestamp = datasets.read_ml100k(
            datasets.get_data_root(root))
        return SequenceData.from_interactions(
            pairs[0], pairs[1], timestamp, datasets.ML100K_NUM_USERS,
            datasets.ML100K_NUM_ITEMS, name=key, ratings=rating)
    if key not in _S3REC_FILES:
        raise ValueError(f"load_sequences: unknown data set '{name}' "
                         f"(available: {', '.join(_S3REC_FILES)}, ml-100k)")
    folder = os.path.join(datasets.get_data_root(root), 'seq-s3rec')
    for ext in ('.txt', '.txt.gz'):
        path = os.path.join(folder, _S3REC_FILES[key] + ext)
        if os.path.isfile(path):
            return read_sequences(path, name=key)
    raise FileNotFoundError(f"sequence data set '{name}' not found: "
                            f"searched {folder} for "
                            f"{_S3REC_FILES[key]}.txt[.gz]")
