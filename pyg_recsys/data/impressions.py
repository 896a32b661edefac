r"""Pointwise click data: impressions with labels and timestamps, a global
temporal split, and per-impression features built only from earlier events.

An impression is a (user, item) shown at a time, with a label: 1 clicked,
0 not. Features of an impression at time :math:`t` read only the user's
impressions at times strictly before :math:`t` (events in the same second do
not see each other), so no label leaks into its own features or into those
of anything earlier.
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor


@dataclass
class Impressions:
    r"""Impressions in time order.

    Args:
        user (torch.Tensor): User ids in :obj:`[0, num_users)`.
        item (torch.Tensor): Item ids in :obj:`[0, num_items)`.
        label (torch.Tensor): 1 (click) or 0.
        time (torch.Tensor, optional): Timestamps in seconds, non-decreasing;
            :obj:`None` for data without time (no sequence features then).
        num_users (int): The number of users.
        num_items (int): The number of items.
        name (str, optional): A name for messages.
    """
    user: Tensor
    item: Tensor
    label: Tensor
    time: Optional[Tensor]
    num_users: int
    num_items: int
    name: str = 'impressions'

    def __post_init__(self):
        n = self.user.numel()
        where = f"Impressions '{self.name}'"
        if n == 0:
            raise ValueError(f"{where}: no impressions")
        for field in ('item', 'label') + (('time', ) if self.time is not None
                                          else ()):
            if getattr(self, field).numel() != n:
                raise ValueError(f"{where}: {n} users but "
                                 f"{getattr(self, field).numel()} {field}s")
        for field, size in (('user', self.num_users),
                            ('item', self.num_items)):
            ids = getattr(self, field)
            bad = ((ids < 0) | (ids >= size)).nonzero().view(-1)
            if bad.numel():
                k = int(bad[0])
                raise ValueError(f"{where}: impression {k} has {field} "
                                 f"{int(ids[k])}, not in [0, {size}) (an "
                                 f"unknown {field})")
        bad = ((self.label != 0) & (self.label != 1)).nonzero().view(-1)
        if bad.numel():
            k = int(bad[0])
            raise ValueError(f"{where}: impression {k} has label "
                             f"{float(self.label[k])}; labels must be 0 or 1")
        if self.time is not None:
            if self.time.is_floating_point() and \
                    not bool(torch.isfinite(self.time).all()):
                raise ValueError(f"{where}: timestamps contain NaN or "
                                 f"infinity (missing)")
            down = (self.time[1:] < self.time[:-1]).nonzero().view(-1)
            if down.numel():
                k = int(down[0]) + 1
                raise ValueError(f"{where}: timestamps must be sorted; "
                                 f"impression {k} ({int(self.time[k])}) comes "
                                 f"before impression {k - 1} "
                                 f"({int(self.time[k - 1])})")
        self.user, self.item = self.user.long(), self.item.long()
        self.label = self.label.float()

    def __len__(self) -> int:
        return self.user.numel()

    def take(self, index: Tensor) -> 'Impressions':
        r"""The impressions at :obj:`index` (a mask or sorted positions)."""
        return Impressions(self.user[index], self.item[index],
                           self.label[index],
                           None if self.time is None else self.time[index],
                           self.num_users, self.num_items, self.name)

    def __repr__(self) -> str:
        return (f"Impressions('{self.name}', {len(self)}, "
                f"ctr={float(self.label.mean()):.3f}, "
                f"timed={self.time is not None})")


def ml100k_impressions(root: Optional[str] = None,
                       threshold: float = 4.0) -> Impressions:
    r"""MovieLens-100K as impressions (an adaptation: every rating is a shown
    movie, a rating of at least :obj:`threshold` a click), in time order
    (ties by user, then item). Found or fetched as
    :func:`~pyg_recsys.data.load_dataset` does."""
    from pyg_recsys.data import datasets
    pairs, rating, timestamp = datasets.read_ml100k(
        datasets.get_data_root(root))
    key = (timestamp.long() * datasets.ML100K_NUM_USERS + pairs[0]) * \
        datasets.ML100K_NUM_ITEMS + pairs[1]
    order = torch.argsort(key)
    return Impressions(pairs[0][order], pairs[1][order],
                       (rating[order] >= threshold).float(),
                       timestamp[order].long(), datasets.ML100K_NUM_USERS,
                       datasets.ML100K_NUM_ITEMS, name='ml-100k')


def read_ripplenet(path: str, name: str = 'book-crossing') -> Impressions:
    r"""A RippleNet/KGCN :obj:`ratings_final.txt[.gz]` (rows
    :obj:`user<TAB>item<TAB>label`, 0-based ids, sampled negatives), without
    time."""
    import gzip
    opener = gzip.open if path.endswith('.gz') else open
    rows = []
    with opener(path, 'rt') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3:
                raise ValueError(f"{path}:{lineno}: expected 3 fields "
                                 f"(user item label), got {len(parts)}")
            try:
                rows.append([int(p) for p in parts])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: non-integer field in "
                                 f"{line.strip()!r}") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    data = torch.tensor(rows)
    return Impressions(data[:, 0], data[:, 1], data[:, 2].float(), None,
                       int(data[:, 0].max()) + 1, int(data[:, 1].max()) + 1,
                       name=name)


def ripplenet_split(num: int, seed: int = 555
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The RippleNet / KGCN split of :obj:`num` rows: with NumPy's global
    generator seeded :obj:`seed` (their :obj:`np.random.seed(555)`), 20% of
    the rows drawn without replacement for validation, then 20% of the rest
    (in ascending order) for test, the remaining 60% for training. Returns
    :obj:`(train, valid, test)` row indices (train ascending). RippleNet then
    keeps only users with a positive training row (:func:`ripplenet_users`).
    """
    import numpy as np
    state = np.random.RandomState(seed)
    valid = state.choice(num, size=int(num * 0.2), replace=False)
    left = np.setdiff1d(np.arange(num), valid)  # ascending, as their set
    test = state.choice(left, size=int(num * 0.2), replace=False)
    train = np.setdiff1d(left, test)
    return (torch.from_numpy(train).long(), torch.from_numpy(valid).long(),
            torch.from_numpy(test).long())


def temporal_split(imp: Impressions,
                   fractions: Sequence[float] = (0.5, 0.3, 0.1, 0.1)
                   ) -> Dict[str, Tensor]:
    r"""A global temporal split into consecutive windows by time quantiles:
    :obj:`'history'` (the events that train the collaborative-filtering
    model behind the CF features), :obj:`'train'`, :obj:`'valid'` and
    :obj:`'test'` (the click model's). Impressions of one second fall in one
    window. Returns a boolean mask per window."""
    if imp.time is None:
        raise ValueError(f"temporal_split: '{imp.name}' has no timestamps")
    if len(fractions) != 4 or min(fractions) <= 0 or \
            abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"temporal_split: four positive fractions summing "
                         f"to 1 expected, got {list(fractions)}")
    n = len(imp)
    bounds = [0]
    total = 0.0
    for f in fractions[:-1]:
        total += f
        # The window ends at the first impression of the second at the cut.
        cut = imp.time[min(int(n * total), n - 1)]
        bounds.append(int(torch.searchsorted(imp.time, cut)))
    bounds.append(n)
    out = {}
    pos = torch.arange(n)
    for name, lo, hi in zip(('history', 'train', 'valid', 'test'), bounds,
                            bounds[1:]):
        if hi <= lo:
            raise ValueError(f"temporal_split: window '{name}' is empty")
        out[name] = (pos >= lo) & (pos < hi)
    return out


HISTORY = 10
_DAY = 86400.0


def click_features(imp: Impressions, history: int = HISTORY
                   ) -> Dict[str, Tensor]:
    r"""Per-impression features from the user's earlier impressions only
    (times strictly before), vectorised.

    Returns a dict of tensors, one row per impression:

    * :obj:`'seq_click'` :obj:`[n, history]`: the outcomes of the user's
      last :obj:`history` earlier impressions, oldest first (0 where there is
      none), :obj:`'seq_mask'` (1 where there is one) and :obj:`'seq_gap'`
      (:math:`\log(1 + \Delta t / 1\,\mathrm{h})` to each);
    * :obj:`'time'` :obj:`[n, 4]`: hour of day and weekday as points on the
      circle (UTC);
    * :obj:`'user'` :obj:`[n, 4]`: :math:`\log(1 + \Delta t / 1\,\mathrm{h})`
      since the user's last impression (0 if none), whether there is one,
      :math:`\log(1 + m)` of the :math:`m` earlier impressions, and the
      earlier click rate smoothed towards 1/2 as :math:`(c + 1) / (m + 2)`
      (the "frequency to click").
    """
    if imp.time is None:
        raise ValueError(f"click_features: '{imp.name}' has no timestamps")
    if history <= 0:
        raise ValueError(f"click_features: history must be positive, got "
                         f"{history}")
    n = len(imp)
    t = imp.time.long()
    # By user, then time (the impressions are in time order already).
    order = torch.argsort(imp.user, stable=True)
    u, ts, y = imp.user[order], t[order], imp.label[order].double()
    pos = torch.arange(n)
    new_user = torch.ones(n, dtype=torch.bool)
    new_user[1:] = u[1:] != u[:-1]
    user_start = torch.cummax(torch.where(new_user, pos, 0), 0).values
    # The first position of the user's block with the same second: the
    # events before it are exactly the earlier ones.
    new_second = new_user.clone()
    new_second[1:] |= ts[1:] != ts[:-1]
    first = torch.cummax(torch.where(new_second, pos, 0), 0).values
    count = (first - user_start).double()            # earlier impressions
    csum = torch.zeros(n + 1, dtype=torch.float64)
    torch.cumsum(y, 0, out=csum[1:])
    clicks = csum[first] - csum[user_start]
    has_last = first > user_start
    last = (first - 1).clamp(min=0)
    hours = 3600.0
    since = torch.where(has_last, (ts - ts[last]).double() / hours, 0.0)
    user_feats = torch.stack([since.log1p(), has_last.double(),
                              count.log1p(), (clicks + 1) / (count + 2)], 1)
    # The last `history` earlier events, oldest first.
    back = torch.arange(history, 0, -1)
    at = first.unsqueeze(1) - back                   # [n, history]
    valid = at >= user_start.unsqueeze(1)
    at = at.clamp(min=0)
    seq_click = torch.where(valid, y[at], 0.0)
    gap = (ts.unsqueeze(1) - ts[at]).double() / hours
    seq_gap = torch.where(valid, gap.clamp(min=0).log1p(), 0.0)
    seconds = t.double()
    hour = (seconds % _DAY) / _DAY * 2 * math.pi
    # 1970-01-01 was a Thursday: weekday 0 = Monday after shifting by 3.
    day = ((torch.floor(seconds / _DAY) + 3) % 7) / 7 * 2 * math.pi
    time_feats = torch.stack([hour.sin(), hour.cos(), day.sin(), day.cos()],
                             1)
    inverse = torch.empty_like(order)
    inverse[order] = pos
    return {
        'seq_click': seq_click[inverse].float(),
        'seq_mask': valid[inverse].float(),
        'seq_gap': seq_gap[inverse].float(),
        'time': time_feats.float(),
        'user': user_feats[inverse].float(),
    }
