r"""Exact full-ranking evaluation and masked top-:math:`k` recommendation."""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from pyg_recsys.metrics import ranking
from pyg_recsys.metrics.ranking import METRICS, _check_ks, _check_metrics

SPLITS = ('train', 'valid', 'test')

# Item columns of the score buffer are padded to a multiple of this: MKL's
# GEMM writes rows of an odd width (Gowalla: 40,981 items) far slower than
# aligned ones (measured 2.0 s -> 1.2 s for the Gowalla test users, d = 64).
_PAD = 64
# The automatic user batch aims at this many buffer entries (128 MiB of
# float32, ~800 Gowalla users); 256-1024 users measured within 5%.
_AUTO_ENTRIES = 2**25

Exclude = Union[Tensor, Tuple[Tensor, Tensor]]


def _padded(num_items: int) -> int:
    return int(math.ceil(num_items / _PAD) * _PAD)


def _auto_batch_size(num_items: int) -> int:
    return max(64, min(4096, _AUTO_ENTRIES // _padded(num_items)))


def _csr_of(exclude: Exclude, num_users: int, num_items: int,
            where: str) -> Tuple[Tensor, Tensor]:
    r"""Normalises :obj:`exclude` (a :obj:`(rowptr, col)` CSR or
    :obj:`[2, E]` (user, item) pairs) to a CSR."""
    if isinstance(exclude, (tuple, list)):
        if len(exclude) != 2:
            raise ValueError(f"{where}: 'exclude' must be (rowptr, col) or a "
                             f"[2, E] tensor of (user, item) pairs")
        rowptr, col = (torch.as_tensor(t, dtype=torch.long) for t in exclude)
        if rowptr.dim() != 1 or rowptr.numel() < 2:
            raise ValueError(f"{where}: 'exclude' rowptr must be 1-D with "
                             f"num_users + 1 entries")
        if col.numel() != int(rowptr[-1]):
            raise ValueError(f"{where}: 'exclude' col has {col.numel()} "
                             f"entries but rowptr ends at {int(rowptr[-1])}")
    else:
        pairs = torch.as_tensor(exclude)
        if pairs.dim() != 2 or pairs.size(0) != 2:
            raise ValueError(f"{where}: 'exclude' must be (rowptr, col) or a "
                             f"[2, E] tensor of (user, item) pairs, got shape "
                             f"{tuple(pairs.shape)}")
        pairs = pairs.long()
        if pairs.numel() and (int(pairs[0].min()) < 0
                              or int(pairs[0].max()) >= num_users):
            raise ValueError(f"{where}: 'exclude' holds user ids outside "
                             f"[0, {num_users})")
        order = torch.argsort(pairs[0], stable=True)
        col = pairs[1, order]
        rowptr = torch.zeros(num_users + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(pairs[0], minlength=num_users), 0,
                     out=rowptr[1:])
    if col.numel() and (int(col.min()) < 0 or int(col.max()) >= num_items):
        raise ValueError(f"{where}: 'exclude' holds item ids outside "
                         f"[0, {num_items})")
    return rowptr, col


def _gather_rows(rowptr: Tensor, col: Tensor,
                 users: Tensor) -> Tuple[Tensor, Tensor]:
    r"""The CSR rows of :obj:`users` (in that order) as :obj:`(ptr, col)`."""
    start, end = rowptr[users], rowptr[users + 1]
    count = end - start
    ptr = torch.zeros(users.numel() + 1, dtype=torch.long)
    torch.cumsum(count, 0, out=ptr[1:])
    total = int(ptr[-1])
    shift = torch.repeat_interleave(start - ptr[:-1], count,
                                    output_size=total)
    return ptr, col[torch.arange(total) + shift]


class _Ranker:
    r"""Batched exact top-:math:`k` over all items with excluded items
    masked to :obj:`-inf`, reusing one score buffer."""

    def __init__(self, num_items: int, batch_size: Optional[int] = None):
        self.num_items = num_items
        self.width = _padded(num_items)
        self.batch_size = int(batch_size) if batch_size else \
            _auto_batch_size(num_items)
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._buffer: Optional[Tensor] = None

    def buffer(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        numel = self.batch_size * self.width
        buf = self._buffer
        if buf is None or buf.dtype != dtype or buf.device != device or \
                buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=device)
            self._buffer = buf
        return buf

    def release(self) -> None:
        self._buffer = None

    def run(self, num_rows: int, k: int, fill: Callable[[int, int, Tensor],
                                                         None],
            mask_ptr: Tensor, mask_flat: Tensor, dtype: torch.dtype,
            device: torch.device, blocked: Optional[Tensor] = None,
            rows: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, Tensor]:
        r"""Ranks :obj:`num_rows` rows: :obj:`fill(start, end, out)` writes the
        scores of rows :obj:`start:end` into :obj:`out[:, :num_items]`;
        :obj:`mask_flat[mask_ptr[s]:mask_ptr[e]]` hold the excluded entries of
        rows :obj:`s:e` as :obj:`row * width + item`; the items
        :obj:`blocked` (not candidates) are excluded in every row. With
        :obj:`rows=(r0, r1)` only those rows are ranked (in the batches a
        whole run would form when :obj:`r0` is a multiple of the batch
        size), and the results have :obj:`r1 - r0` rows."""
        width, num_items = self.width, self.num_items
        r0, r1 = (0, num_rows) if rows is None else rows
        buf = self.buffer(dtype, device)
        values = torch.empty(r1 - r0, k, dtype=dtype, device=device)
        index = torch.empty(r1 - r0, k, dtype=torch.long, device=device)
        ninf = float('-inf')
        mask_flat = mask_flat.to(device)
        if blocked is not None:
            blocked = blocked.to(device)
        for start in range(r0, r1, self.batch_size):
            end = min(start + self.batch_size, r1)
            out = buf[:(end - start) * width].view(end - start, width)
            fill(start, end, out)
            if width > num_items:
                out[:, num_items:].fill_(ninf)
            lo, hi = int(mask_ptr[start]), int(mask_ptr[end])
            if hi > lo:
                flat = mask_flat[lo:hi]
                if start:
                    flat = flat - start * width
                out.view(-1).index_fill_(0, flat, ninf)
            if blocked is not None:
                out.index_fill_(1, blocked, ninf)
            values[start - r0:end - r0], index[start - r0:end - r0] = \
                ranking._select_topk(out, k)
        return values, index

    def mask_index(self, rowptr: Optional[Tensor], col: Optional[Tensor],
                   users: Tensor) -> Tuple[Tensor, Tensor]:
        r"""The excluded entries of the rows of :obj:`users` as flat buffer
        offsets :obj:`position * width + item`, with a pointer per row."""
        if rowptr is None:
            return torch.zeros(users.numel() + 1, dtype=torch.long), \
                torch.empty(0, dtype=torch.long)
        ptr, items = _gather_rows(rowptr, col, users.cpu())
        row = torch.repeat_interleave(torch.arange(users.numel()),
                                      ptr.diff(), output_size=items.numel())
        return ptr, row * self.width + items


def _check_emb(user_emb: Tensor, item_emb: Tensor, num_users: int,
               num_items: int, where: str) -> Tuple[Tensor, Tensor]:
    for name, emb, n in (('user_emb', user_emb, num_users),
                         ('item_emb', item_emb, num_items)):
        if not isinstance(emb, Tensor):
            raise TypeError(f"{where}: '{name}' must be a tensor")
        if emb.dim() != 2 or emb.size(0) != n:
            raise ValueError(f"{where}: '{name}' must have shape [{n}, d], "
                             f"got {tuple(emb.shape)}")
        if not emb.is_floating_point():
            raise TypeError(f"{where}: '{name}' must be floating point, got "
                            f"{emb.dtype}")
    if user_emb.size(1) != item_emb.size(1):
        raise ValueError(f"{where}: 'user_emb' and 'item_emb' have different "
                         f"embedding sizes ({user_emb.size(1)} vs "
                         f"{item_emb.size(1)})")
    if user_emb.device != item_emb.device:
        raise ValueError(f"{where}: 'user_emb' and 'item_emb' are on "
                         f"different devices")
    for name, emb in (('user_emb', user_emb), ('item_emb', item_emb)):
        if bool(torch.isnan(emb).any()):
            raise ValueError(f"{where}: '{name}' contains NaN")
        if bool(torch.isinf(emb).any()):
            raise ValueError(f"{where}: '{name}' contains infinite values")
    dtype = torch.promote_types(user_emb.dtype, item_emb.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return user_emb.detach().to(dtype), item_emb.detach().to(dtype)


def _emb_fill(user_emb: Tensor, item_emb: Tensor, users: Tensor,
              width: int) -> Callable[[int, int, Tensor], None]:
    r"""A :obj:`fill` writing :obj:`user_emb[users] @ item_emb.T` with the
    item matrix transposed, contiguous and zero-padded to :obj:`width`."""
    item_t = item_emb.new_zeros(item_emb.size(1), width)
    item_t[:, :item_emb.size(0)] = item_emb.t()
    users = users.to(user_emb.device)

    def fill(start: int, end: int, out: Tensor) -> None:
        torch.mm(user_emb.index_select(0, users[start:end]), item_t, out=out)

    return fill


def _score_fill(score_fn: Callable[[Tensor], Tensor], users: Tensor,
                num_items: int, where: str) -> Callable[[int, int, Tensor],
                                                        None]:
    def fill(start: int, end: int, out: Tensor) -> None:
        batch = users[start:end]
        scores = score_fn(batch)
        if not isinstance(scores, Tensor) or \
                tuple(scores.shape) != (end - start, num_items):
            shape = tuple(scores.shape) if isinstance(scores, Tensor) else \
                type(scores).__name__
            raise ValueError(f"{where}: score_fn must return a tensor of "
                             f"shape [len(users), num_items] = "
                             f"[{end - start}, {num_items}], got {shape}")
        if scores.is_floating_point() and bool(torch.isnan(scores).any()):
            raise ValueError(f"{where}: score_fn returned NaN scores")
        out[:, :num_items].copy_(scores)

    return fill


def _probe_scores(score_fn: Callable[[Tensor], Tensor], users: Tensor,
                  device: Optional[torch.device]) -> Tuple[torch.dtype,
                                                           torch.device]:
    r"""The dtype and device to rank :obj:`score_fn`'s scores in."""
    probe = score_fn(users[:1].to(device) if device is not None else
                     users[:1])
    if not isinstance(probe, Tensor):
        raise ValueError("score_fn must return a tensor")
    dtype = probe.dtype
    if not probe.is_floating_point():
        dtype = torch.float64  # integer scores (counts) stay exact
    elif dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return dtype, probe.device


def _finish(values: Tensor, index: Tensor, users: Tensor,
            rowptr: Optional[Tensor], col: Optional[Tensor],
            num_items: int) -> Tuple[Tensor, Tensor]:
    r"""Marks excluded (masked) positions of a top-:math:`k` result with
    item id :obj:`-1`."""
    if rowptr is None or col.numel() == 0:
        return values, index
    ptr, items = _gather_rows(rowptr, col, users.cpu())
    row = torch.repeat_interleave(torch.arange(users.numel()), ptr.diff(),
                                  output_size=items.numel())
    keys = (row * num_items + items).sort().values.to(index.device)
    query = torch.arange(users.numel(), device=index.device).view(-1, 1) * \
        num_items + index
    pos = torch.searchsorted(keys, query).clamp(max=max(keys.numel() - 1, 0))
    masked = keys[pos] == query
    return values, index.masked_fill(masked, -1)


def _topk_users(users: Optional[Tensor], num_users: int,
                where: str) -> Tensor:
    if users is None:
        return torch.arange(num_users)
    users = torch.as_tensor(users, dtype=torch.long).view(-1).cpu()
    if users.numel() and (int(users.min()) < 0
                          or int(users.max()) >= num_users):
        raise ValueError(f"{where}: user ids must lie in [0, {num_users})")
    return users


@torch.no_grad()
def topk(user_emb: Tensor, item_emb: Tensor, users: Optional[Tensor] = None,
         k: int = 20, exclude: Optional[Exclude] = None,
         batch_size: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    r"""The exact top-:obj:`k` items of :obj:`users` under the scores
    :math:`\mathbf{e}_u^{\top} \mathbf{e}_i`, best first, ties broken by
    lower item id, with the items of :obj:`exclude` never recommended.

    Scores are computed in user batches into one reused buffer, excluded
    items are set to :obj:`-inf`, and selection is the exact
    :func:`~pyg_recsys.metrics.ranking._select_topk`. When a user has fewer
    than :obj:`k` non-excluded items, the trailing positions hold item id
    :obj:`-1` (value :obj:`-inf`).

    Args:
        user_emb (torch.Tensor): User embeddings, shape :obj:`[U, d]`.
        item_emb (torch.Tensor): Item embeddings, shape :obj:`[I, d]`.
        users (torch.Tensor, optional): The users to rank for, shape
            :obj:`[N]`; all users if :obj:`None`. (default: :obj:`None`)
        k (int, optional): The number of items per user, at most :obj:`I`.
            (default: :obj:`20`)
        exclude (torch.Tensor or (torch.Tensor, torch.Tensor), optional):
            Items never to recommend, as :obj:`[2, E]` (user, item) pairs or
            the :obj:`(rowptr, col)` of
            :meth:`~pyg_recsys.data.InteractionGraph.csr` (typically the
            training items). (default: :obj:`None`)
        batch_size (int, optional): Users per batch; chosen from the number
            of items if :obj:`None`. (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): scores and item ids, both of shape
        :obj:`[N, k]`.
    """
    where = 'topk'
    num_users, num_items = user_emb.size(0), item_emb.size(0)
    user_emb, item_emb = _check_emb(user_emb, item_emb, num_users, num_items,
                                    where)
    return _topk_impl(
        lambda ranker, users: _emb_fill(user_emb, item_emb, users,
                                        ranker.width),
        user_emb.dtype, user_emb.device, num_users, num_items, users, k,
        exclude, batch_size, where)


@torch.no_grad()
def topk_scores(score_fn: Callable[[Tensor], Tensor], num_users: int,
                num_items: int, users: Optional[Tensor] = None, k: int = 20,
                exclude: Optional[Exclude] = None,
                batch_size: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    r"""Like :func:`topk` for a model given by its score function
    :obj:`score_fn(users) -> [len(users), num_items]` (e.g. most-popular).

    Args:
        score_fn (callable): Maps a :obj:`LongTensor` of user ids to their
            scores over all items.
        num_users (int): The number of users.
        num_items (int): The number of items.
        users (torch.Tensor, optional): The users to rank for.
            (default: all)
        k (int, optional): The number of items per user. (default: :obj:`20`)
        exclude (torch.Tensor or (torch.Tensor, torch.Tensor), optional):
            Items never to recommend, see :func:`topk`. (default: :obj:`None`)
        batch_size (int, optional): Users per batch. (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor): scores and item ids, both of shape
        :obj:`[N, k]`.
    """
    where = 'topk_scores'
    users_t = _topk_users(users, num_users, where)
    if users_t.numel() == 0:
        return (torch.empty(0, k), torch.empty(0, k, dtype=torch.long))
    dtype, device = _probe_scores(score_fn, users_t, None)
    return _topk_impl(
        lambda ranker, u: _score_fill(score_fn, u, num_items, where), dtype,
        device, num_users, num_items, users_t, k, exclude, batch_size, where)


def _topk_impl(make_fill, dtype, device, num_users: int, num_items: int,
               users: Optional[Tensor], k: int, exclude: Optional[Exclude],
               batch_size: Optional[int],
               where: str) -> Tuple[Tensor, Tensor]:
    k = int(k)
    if not 1 <= k <= num_items:
        raise ValueError(f"{where}: k must lie in [1, num_items={num_items}],"
                         f" got {k}")
    users = _topk_users(users, num_users, where)
    rowptr = col = None
    if exclude is not None:
        rowptr, col = _csr_of(exclude, num_users, num_items, where)
        if rowptr.numel() != num_users + 1:
            raise ValueError(f"{where}: 'exclude' rowptr must have "
                             f"num_users + 1 = {num_users + 1} entries, got "
                             f"{rowptr.numel()}")
    ranker = _Ranker(num_items, batch_size)
    ptr, flat = ranker.mask_index(rowptr, col, users)
    values, index = ranker.run(users.numel(), k, make_fill(ranker, users),
                               ptr, flat, dtype, device)
    return _finish(values, index, users, rowptr, col, num_items)


def _candidate_mask(candidates: Tensor, num_items: int, where: str
                    ) -> Tensor:
    cand = torch.as_tensor(candidates).cpu()
    if cand.dtype == torch.bool:
        if cand.shape != (num_items, ):
            raise ValueError(f"{where}: a boolean 'candidates' mask must have "
                             f"shape [{num_items}], got {tuple(cand.shape)}")
        keep = cand.clone()
    else:
        if cand.is_floating_point() or cand.dim() != 1:
            raise ValueError(f"{where}: 'candidates' must be a 1-D tensor of "
                             f"item ids or a boolean mask")
        cand = cand.long()
        if cand.numel() and (int(cand.min()) < 0
                             or int(cand.max()) >= num_items):
            raise ValueError(f"{where}: 'candidates' holds item ids outside "
                             f"[0, {num_items})")
        keep = torch.zeros(num_items, dtype=torch.bool)
        keep[cand] = True
    if not bool(keep.any()):
        raise ValueError(f"{where}: 'candidates' is empty")
    return keep


class Evaluator:
    r"""Exact full-ranking evaluation of a recommender on one split of an
    :class:`~pyg_recsys.data.InteractionGraph`.

    Every user with at least one item in :obj:`split` gets a score for every
    item; the items of the :obj:`exclude` splits (by default all splits
    before :obj:`split`: training items when evaluating :obj:`'valid'`,
    training and validation items when evaluating :obj:`'test'`) are set to
    :obj:`-inf`; items are ranked by descending score with ties broken by
    lower item id, exactly (see
    :func:`~pyg_recsys.metrics.ranking._select_topk`); and Recall, NDCG,
    Precision, HitRate, MRR, MAP and F1 at every cut-off :math:`K` (see
    :func:`~pyg_recsys.metrics.ranking.ranking_metrics`) come from one
    top-:math:`\max K` selection per user batch and are averaged over the
    evaluated users.

    Scores are computed in user batches into one score buffer that is kept
    between calls (call :meth:`release` to free it); the item matrix is
    transposed once and zero-padded for an aligned GEMM.

    .. code-block:: python

        evaluator = Evaluator(graph, split='test', ks=(10, 20))
        evaluator.evaluate(user_emb, item_emb)
        >>> {'recall@10': 0.137, 'recall@20': 0.191, 'ndcg@10': ..., ...}
        evaluator.evaluate_scores(lambda users: popularity.expand(
            users.numel(), -1))

    Args:
        graph (InteractionGraph): The interaction graph.
        split (str, optional): The split to evaluate, :obj:`'valid'` or
            :obj:`'test'` (or :obj:`'train'`). (default: :obj:`'test'`)
        ks (Sequence[int], optional): The cut-offs :math:`K`; values above
            the number of items count missing ranks as misses.
            (default: :obj:`(10, 20)`)
        metrics (Sequence[str], optional): Some of :obj:`'recall'`,
            :obj:`'ndcg'`, :obj:`'precision'`, :obj:`'hit'`, :obj:`'mrr'`,
            :obj:`'map'` and :obj:`'f1'`. (default: all)
        exclude (Sequence[str], optional): The splits whose items are masked.
            (default: every existing split before :obj:`split`)
        batch_size (int, optional): Users per batch; chosen from the number
            of items if :obj:`None`. (default: :obj:`None`)
        device (torch.device or str, optional): Where scores are computed
            and ranked; the device of the embeddings (or of the scores) if
            :obj:`None`. (default: :obj:`None`)
        candidates (torch.Tensor, optional): Rank only these items (ids, or
            a :obj:`[I]` boolean mask), e.g. only items new at test time:
            the others are never recommended, relevant items outside the
            candidates are dropped from the labels, and users left without a
            relevant candidate are not evaluated. Masking (:obj:`exclude`,
            :obj:`()` for none) applies within the candidates. See
            :func:`~pyg_recsys.metrics.protocols.reclm_protocol` for a named
            preset. (default: :obj:`None`, all items)
    """
    def __init__(self, graph, split: str = 'test',
                 ks: Sequence[int] = (10, 20),
                 metrics: Sequence[str] = METRICS,
                 exclude: Optional[Sequence[str]] = None,
                 batch_size: Optional[int] = None,
                 device: Optional[Union[str, torch.device]] = None,
                 candidates: Optional[Tensor] = None):
        name = self.__class__.__name__
        if split not in SPLITS:
            raise ValueError(f"{name}: unknown split '{split}' (expected one "
                             f"of {SPLITS})")
        if getattr(graph, split, None) is None:
            raise ValueError(f"{name}: the graph has no '{split}' split")
        if exclude is None:
            exclude = tuple(s for s in SPLITS[:SPLITS.index(split)]
                            if getattr(graph, s, None) is not None)
        else:
            exclude = (exclude, ) if isinstance(exclude, str) else \
                tuple(exclude)
            for s in exclude:
                if s not in SPLITS:
                    raise ValueError(f"{name}: unknown split '{s}' in "
                                     f"'exclude' (expected some of {SPLITS})")
                if s == split:
                    raise ValueError(f"{name}: cannot exclude the evaluated "
                                     f"split '{split}'")
                if getattr(graph, s, None) is None:
                    raise ValueError(f"{name}: the graph has no '{s}' split "
                                     f"to exclude")
        self.graph = graph
        self.split = split
        self.device = None if device is None else torch.device(device)
        self.ks = _check_ks(ks)
        self.metrics = _check_metrics(metrics)
        self.exclude = tuple(dict.fromkeys(exclude))
        self.num_users = int(graph.num_users)
        self.num_items = int(graph.num_items)

        pairs = graph.split(split)
        self.candidates = self._blocked = None
        if candidates is not None:
            keep = _candidate_mask(candidates, self.num_items, name)
            self.candidates = keep.nonzero().view(-1)
            self._blocked = (~keep).nonzero().view(-1)
            pairs = pairs[:, keep[pairs[1]]]
        # Users with at least one (candidate) item of the evaluated split.
        count = torch.bincount(pairs[0], minlength=self.num_users)
        self.users = (count > 0).nonzero().view(-1)
        self.num_relevant = count[self.users]
        # Sorted keys user * I + item of the relevant pairs (the split is
        # sorted by (user, item)).
        self._label_keys = pairs[0] * self.num_items + pairs[1]
        if self._label_keys.numel() > 1:
            self._label_keys = self._label_keys.sort().values

        self._ranker = _Ranker(self.num_items, batch_size)
        self.batch_size = self._ranker.batch_size
        if self.exclude:
            ex = torch.cat([graph.split(s) for s in self.exclude], dim=1)
            ex_rowptr, ex_col = _csr_of(ex, self.num_users, self.num_items,
                                        name)
        else:
            ex_rowptr = ex_col = None
        self._mask_ptr, self._mask_flat = self._ranker.mask_index(
            ex_rowptr, ex_col, self.users)

    @property
    def max_k(self) -> int:
        r"""The length of the ranked lists, :math:`\min(\max K, I)` (or the
        number of candidates)."""
        n = self.num_items if self.candidates is None else \
            self.candidates.numel()
        return min(max(self.ks), n)

    @property
    def num_eval_users(self) -> int:
        r"""The number of evaluated users."""
        return int(self.users.numel())

    def release(self) -> None:
        r"""Frees the cached score buffer."""
        self._ranker.release()

    @torch.no_grad()
    def rank(self, user_emb: Tensor, item_emb: Tensor,
             rows: Optional[Tuple[int, int]] = None) -> Tensor:
        r"""The top-:math:`\max K` item ids of every evaluated user (in the
        order of :attr:`users`), shape :obj:`[N, min(max K, I)]`; with
        :obj:`rows=(r0, r1)`, of the evaluated users :obj:`r0:r1` only
        (see :func:`pyg_recsys.distributed.evaluate`)."""
        user_emb, item_emb = _check_emb(user_emb, item_emb, self.num_users,
                                        self.num_items,
                                        self.__class__.__name__)
        if self.device is not None:
            user_emb, item_emb = (user_emb.to(self.device),
                                  item_emb.to(self.device))
        fill = _emb_fill(user_emb, item_emb, self.users, self._ranker.width)
        return self._run(fill, user_emb.dtype, user_emb.device, rows)

    @torch.no_grad()
    def rank_scores(self, score_fn: Callable[[Tensor], Tensor]) -> Tensor:
        r"""Like :meth:`rank` for a score function
        :obj:`score_fn(users) -> [len(users), num_items]`."""
        name = self.__class__.__name__
        if self.users.numel() == 0:
            return torch.empty(0, self.max_k, dtype=torch.long)
        dtype, device = _probe_scores(score_fn, self.users, None)
        if self.device is not None:
            device = self.device
        fill = _score_fill(score_fn, self.users, self.num_items, name)
        return self._run(fill, dtype, device)

    def _run(self, fill, dtype, device, rows=None) -> Tensor:
        _, index = self._ranker.run(self.users.numel(), self.max_k, fill,
                                    self._mask_ptr, self._mask_flat, dtype,
                                    device, self._blocked, rows)
        return index

    def metrics_of(self, index: Tensor, reduce: bool = True
                   ) -> Dict[str, Union[float, Tensor]]:
        r"""The metrics of the ranked lists :obj:`index` (as returned by
        :meth:`rank`): means over the evaluated users, or per-user
        :obj:`float64` tensors if :obj:`reduce=False`."""
        if index.dim() != 2 or index.size(0) != self.users.numel():
            raise ValueError(f"{self.__class__.__name__}: expected ranked "
                             f"lists of shape [{self.users.numel()}, L], got "
                             f"{tuple(index.shape)}")
        index = index.cpu()
        keys = self._label_keys
        query = self.users.view(-1, 1) * self.num_items + index
        if keys.numel():
            pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
            hits = (keys[pos] == query) & (index >= 0)
        else:
            hits = torch.zeros_like(query, dtype=torch.bool)
        per_user = ranking.ranking_metrics(hits, self.num_relevant, self.ks,
                                           self.metrics)
        if not reduce:
            return per_user
        n = self.users.numel()
        return {key: (float(val.mean()) if n else 0.0)
                for key, val in per_user.items()}

    def evaluate(self, user_emb: Tensor, item_emb: Tensor
                 ) -> Dict[str, float]:
        r"""Metrics of the scores :math:`\mathbf{e}_u^{\top}\mathbf{e}_i`.

        Args:
            user_emb (torch.Tensor): User embeddings, shape :obj:`[U, d]`.
            item_emb (torch.Tensor): Item embeddings, shape :obj:`[I, d]`.

        Returns:
            Dict[str, float]: :obj:`'{metric}@{K}'` (e.g. :obj:`'recall@20'`)
            to the mean over the evaluated users.
        """
        return self.metrics_of(self.rank(user_emb, item_emb))

    def evaluate_scores(self, score_fn: Callable[[Tensor], Tensor]
                        ) -> Dict[str, float]:
        r"""Metrics of a model given by its score function, e.g. a
        most-popular baseline.

        Args:
            score_fn (callable): Maps a :obj:`LongTensor` of user ids
                :obj:`[B]` to their scores over all items,
                :obj:`[B, num_items]`.

        Returns:
            Dict[str, float]: :obj:`'{metric}@{K}'` to the mean over the
            evaluated users.
        """
        return self.metrics_of(self.rank_scores(score_fn))

    def __repr__(self) -> str:
        cand = '' if self.candidates is None else \
            f', candidates={self.candidates.numel()}'
        return (f'{self.__class__.__name__}(split={self.split!r}, '
                f'ks={self.ks}, exclude={self.exclude}{cand}, '
                f'num_users={self.num_eval_users})')
