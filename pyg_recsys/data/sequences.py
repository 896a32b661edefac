r"""Time-ordered item sequences per user, their leave-one-out split and
padded batches, all built with tensor operations (no Python loop per
event)."""
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

    Raises:
        ValueError: On a malformed :obj:`ptr`, an item id outside
            :obj:`[0, I)`, or times that go backwards within a user (naming
            the user).
    """
    def __init__(self, ptr: Tensor, items: Tensor, num_items: int,
                 timestamps: Optional[Tensor] = None,
                 name: Optional[str] = None):
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
        self.ptr, self.items, self.timestamps = ptr, items, timestamps
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
                          name: Optional[str] = None) -> 'SequenceData':
        r"""From interaction columns in any order: each user's events are
        sorted by time, ties by item id (a stable, documented order)."""
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
        return cls(ptr, items[order], num_items, timestamps[order], name=name)

    # ------------------------------------------------------------------
    def _take(self, keep: Tensor) -> 'SequenceData':
        r"""The events where :obj:`keep` is true, per user."""
        counts = torch.zeros(self.num_users, dtype=torch.long).index_add_(
            0, self._row_of(self.ptr), keep.long())
        ptr = torch.zeros_like(self.ptr)
        torch.cumsum(counts, 0, out=ptr[1:])
        ts = None if self.timestamps is None else self.timestamps[keep]
        return SequenceData(ptr, self.items[keep], self.num_items, ts,
                            name=self.name)

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
        position = torch.arange(self.num_events) - \
            self.ptr[:-1].repeat_interleave(lengths)
        length = lengths.repeat_interleave(lengths)
        evaluated = (length >= 3)
        keep = ~evaluated | (position < length - 2)
        users = (~short).nonzero().view(-1)
        last = self.ptr[1:][users] - 1
        return SequenceSplit(self._take(keep), users, self.items[last - 1],
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
        lengths = self.lengths
        position = torch.arange(self.num_events) - \
            self.ptr[:-1].repeat_interleave(lengths)
        mask = position > 0
        users = self._row_of(self.ptr)[mask]
        return users, position[mask], self.items[mask]

    def __repr__(self) -> str:
        name = f"'{self.name}', " if self.name else ''
        return (f'{self.__class__.__name__}({name}num_users='
                f'{self.num_users}, num_items={self.num_items}, '
                f'events={self.num_events})')


def _windows(items: Tensor, start: Tensor, stop: Tensor, max_len: int,
             pad: int) -> Tuple[Tensor, Tensor]:
    if int(max_len) <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    lengths = (stop - start).clamp(max=int(max_len))
    if bool((lengths < 0).any()):
        raise ValueError("a window ends before its sequence starts")
    width = max(int(lengths.max()) if lengths.numel() else 0, 1)
    first = stop - lengths
    index = first.view(-1, 1) + torch.arange(width).view(1, -1)
    valid = torch.arange(width).view(1, -1) < lengths.view(-1, 1)
    out = items[index.clamp(max=max(items.numel() - 1, 0))] if items.numel() \
        else torch.zeros_like(index)
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
    :obj:`<root>/seq-s3rec/`)."""
    from pyg_recsys.data.datasets import get_data_root
    key = name.lower()
    if key not in _S3REC_FILES:
        raise ValueError(f"load_sequences: unknown data set '{name}' "
                         f"(available: {', '.join(_S3REC_FILES)})")
    folder = os.path.join(get_data_root(root), 'seq-s3rec')
    for ext in ('.txt', '.txt.gz'):
        path = os.path.join(folder, _S3REC_FILES[key] + ext)
        if os.path.isfile(path):
            return read_sequences(path, name=key)
    raise FileNotFoundError(f"sequence data set '{name}' not found: "
                            f"searched {folder} for "
                            f"{_S3REC_FILES[key]}.txt[.gz]")
