r"""GTE, the learning-less Graph Topology Encoder, and the topological
closeness it is built on.

Both are sums of odd-length walk counts of the binary user-item adjacency
:math:`\mathbf{A} \in \{0, 1\}^{U \times I}`, computed for a batch of users
at a time from the sparse :math:`\mathbf{A}` only: no dense item-item or
full user-item matrix is formed (the official code keeps a dense
:math:`U \times I` state and a dense :math:`I \times I` identity).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from pyg_recsys.ops import CSR, spmm

# Users scored at once inside one call: the work buffers hold at most
# users x (U + I) entries; this keeps them near 128 MiB of float64.
_WORK_ENTRIES = 2**24
# Expanded (row, column) entries of the sparse gather path per chunk.
_EXPAND_CHUNK = 2**22
# The sparse gather path is used while its work is below this fraction of
# the dense product's (B x nnz); it is ~3x slower per entry (measured on
# gte-amazon-beauty, 1 thread).
_EXPAND_RATIO = 1 / 3
# The first step A[users] A^T A as a SciPy CSR x CSR product where SciPy is
# installed: 2x faster than the two torch gathers on gte-amazon-beauty (3.0 s
# vs 6.5 s for all 22,363 users, 1 thread). torch.sparse's CSR x CSR (MKL)
# is as fast but leaks memory on every call (pytorch/pytorch#109445; +550 MB
# per pass over gte-amazon-beauty with torch 2.13). Tests turn it off to
# check the gather path.
_USE_SCIPY = True
_EXACT_LIMIT = {torch.float64: 2**53, torch.int64: 2**63 - 1}


def _odd_coefficients(k: int, binomial: bool) -> List[int]:
    r"""The weight of :math:`(\mathbf{A}\mathbf{A}^\top)^j\mathbf{A}`,
    :math:`j = 0, \dots, \lfloor (k-1)/2 \rfloor`."""
    return [math.comb(k, 2 * j + 1) if binomial else 1
            for j in range((k - 1) // 2 + 1)]


def _check_k(k, where: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{where}: k must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"{where}: k (the number of propagation steps) must "
                         f"be at least 1, got {k}")
    return k


def _check_users(users, num_users: int, where: str) -> Tensor:
    users = torch.as_tensor(users)
    if users.is_floating_point() or users.dtype == torch.bool:
        raise TypeError(f"{where}: user ids must be integers, got "
                        f"{users.dtype}")
    users = users.to(torch.long).view(-1)
    if users.numel() and (int(users.min()) < 0
                          or int(users.max()) >= num_users):
        raise ValueError(f"{where}: user ids must lie in [0, {num_users}), "
                         f"got ids in [{int(users.min())}, "
                         f"{int(users.max())}]")
    return users


def _binary_csr(pairs: Tensor, num_rows: int, num_cols: int) -> CSR:
    r"""The all-ones CSR of the distinct :obj:`(row, col)` pairs."""
    key = torch.unique(pairs[0] * num_cols + pairs[1])  # sorted, deduplicated
    row, col = key // num_cols, key % num_cols
    rowptr = torch.zeros(num_rows + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(row, minlength=num_rows), 0, out=rowptr[1:])
    return CSR(rowptr, col, None, num_cols)


def _adjacency_of(source, where: str) -> Tuple[CSR, int, int]:
    r"""The binary training adjacency :math:`\mathbf{A}` (users x items) of
    an :class:`~pyg_recsys.data.InteractionGraph`, a :obj:`torch.sparse`
    matrix or a :class:`~pyg_recsys.ops.CSR` (stored values are ignored:
    every stored entry counts as one interaction)."""
    if hasattr(source, 'csr') and hasattr(source, 'num_items'):
        rowptr, col = source.csr('train')
        return (CSR(rowptr.long(), col.long(), None, int(source.num_items)),
                int(source.num_users), int(source.num_items))
    if isinstance(source, CSR):
        num_users = source.rowptr.numel() - 1
        return (CSR(source.rowptr.long(), source.col.long(), None,
                    int(source.num_cols)), num_users, int(source.num_cols))
    if isinstance(source, Tensor) and source.layout in (torch.sparse_coo,
                                                        torch.sparse_csr):
        if source.dim() != 2:
            raise ValueError(f"{where}: the adjacency must be 2-D "
                             f"(users x items)")
        coo = source.to_sparse_coo().coalesce() \
            if source.layout == torch.sparse_csr else source.coalesce()
        idx = coo.indices()[:, coo.values() != 0]
        num_users, num_items = int(source.size(0)), int(source.size(1))
        return _binary_csr(idx.cpu(), num_users, num_items), num_users, \
            num_items
    raise TypeError(f"{where}: expected an InteractionGraph, a torch.sparse "
                    f"users x items matrix or a CSR, got "
                    f"{type(source).__name__}")


class _WalkCounter:
    r"""Rows of :math:`\sum_j c_j (\mathbf{A}\mathbf{A}^\top)^j\mathbf{A}`
    for batches of users, from the CSR of :math:`\mathbf{A}` and of
    :math:`\mathbf{A}^\top`.

    Each factor :math:`\mathbf{X} \mapsto \mathbf{X}\mathbf{A}^\top` and
    :math:`\mathbf{Y} \mapsto \mathbf{Y}\mathbf{A}` is either a sparse
    gather (every nonzero :math:`x_{bn}` adds itself to the neighbours of
    :math:`n`; work :math:`\sum \deg(n)` over the nonzeros, which is what the
    first, very sparse, steps cost) or a dense CSR product (work
    :math:`B \cdot nnz`), whichever is cheaper. Values are exact integers:
    :obj:`float64` is exact below :math:`2^{53}` and :obj:`int64` below
    :math:`2^{63}`; a bound on every intermediate is checked and an
    :class:`OverflowError` is raised before exactness could be lost.
    """

    def __init__(self, adj: CSR, adj_t: CSR, num_users: int,
                 num_items: int, dtype: torch.dtype):
        self.adj, self.adj_t = adj, adj_t
        self.num_users, self.num_items = num_users, num_items
        self.dtype = dtype
        self.limit = _EXACT_LIMIT[dtype]
        self.user_deg = adj.rowptr.diff()
        self.item_deg = adj_t.rowptr.diff()
        self.max_user_deg = int(self.user_deg.max()) if num_users else 0
        self.max_item_deg = int(self.item_deg.max()) if num_items else 0
        self.use_scipy = _USE_SCIPY
        self._sp: Optional[tuple] = None

    # -- one factor ---------------------------------------------------------
    def _expand(self, rows: Tensor, cols: Tensor, vals: Tensor, mat: CSR,
                out: Tensor) -> None:
        r""":obj:`out[r, mat.col[mat.rowptr[c]:mat.rowptr[c + 1]]] += v` for
        every triple :obj:`(r, c, v)`, in chunks."""
        start_of = mat.rowptr[cols]
        count = mat.rowptr[cols + 1] - start_of
        width = out.size(1)
        flat = out.view(-1)
        ends = torch.cumsum(count, 0)
        lo, n = 0, cols.numel()
        while lo < n:
            base = int(ends[lo - 1]) if lo else 0
            hi = int(torch.searchsorted(ends, base + _EXPAND_CHUNK,
                                        right=True))
            hi = min(max(hi, lo + 1), n)
            cnt = count[lo:hi]
            total = int(cnt.sum())
            if total:
                ptr = torch.cumsum(cnt, 0) - cnt
                shift = torch.repeat_interleave(start_of[lo:hi] - ptr, cnt,
                                                output_size=total)
                target = mat.col[torch.arange(total, device=cnt.device) +
                                 shift]
                key = torch.repeat_interleave(rows[lo:hi] * width, cnt,
                                              output_size=total) + target
                flat.index_add_(0, key, torch.repeat_interleave(
                    vals[lo:hi], cnt, output_size=total))
            lo = hi

    def _dense(self, x: Tensor, mat_t: CSR) -> Tensor:
        r""":math:`\mathbf{X}\mathbf{M}` as :math:`(\mathbf{M}^\top
        \mathbf{X}^\top)^\top` with the CSR of :math:`\mathbf{M}^\top`."""
        xt = x.t().contiguous()
        if self.dtype.is_floating_point:
            return spmm(mat_t, xt).t()
        # torch.sparse supports int64 only in COO x dense.
        coo = torch.sparse_coo_tensor(
            torch.stack([torch.repeat_interleave(
                torch.arange(mat_t.num_rows), mat_t.rowptr.diff()),
                mat_t.col]),
            torch.ones(mat_t.col.numel(), dtype=self.dtype),
            (mat_t.num_rows, mat_t.num_cols), is_coalesced=True,
            check_invariants=False)
        return torch.sparse.mm(coo, xt).t()

    def _times(self, x: Tensor, mat: CSR, mat_t: CSR, deg: Tensor,
               width: int) -> Tensor:
        r""":math:`\mathbf{X}\mathbf{M}` for dense :obj:`x` of shape
        :obj:`[B, mat.num_rows]`."""
        rows, cols = x.nonzero(as_tuple=True)
        expand_work = int(deg[cols].sum()) if cols.numel() else 0
        if expand_work <= _EXPAND_RATIO * x.size(0) * mat.nnz:
            out = x.new_zeros(x.size(0), width)
            self._expand(rows, cols, x[rows, cols], mat, out)
            return out
        return self._dense(x, mat_t)

    def _check(self, bound: int, where: str) -> None:
        if bound > self.limit:
            kind = 'float64' if self.dtype == torch.float64 else 'int64'
            hint = ' (pass dtype=torch.int64)' if kind == 'float64' else ''
            raise OverflowError(
                f"{where}: walk counts may exceed {self.limit} and would no "
                f"longer be exact in {kind}{hint}; use a smaller k")

    def _scipy(self):
        r"""The :obj:`scipy.sparse` CSR matrices :math:`\mathbf{A}` and
        :math:`\mathbf{A}^\top` for the sparse-sparse first step, or
        :obj:`None` without SciPy (an optional dependency)."""
        if not self.use_scipy:
            return None
        if self._sp is None:
            try:
                import numpy as np
                import scipy.sparse as sps
            except ImportError:
                self.use_scipy = False
                return None
            dtype = np.float64 if self.dtype == torch.float64 else np.int64
            self._sp = tuple(sps.csr_matrix(
                (np.ones(m.col.numel(), dtype=dtype), m.col.numpy(),
                 m.rowptr.numpy()), shape=(m.num_rows, m.num_cols))
                for m in (self.adj, self.adj_t))
        return self._sp

    def _first_step(self, b0: Tensor, i0: Tensor, batch: int,
                    count: Tensor, out: Tensor, coeff: int,
                    keep: bool) -> Tuple[Optional[Tensor], int]:
        r"""Adds :obj:`coeff` times :math:`\mathbf{X}_1 = \mathbf{A}[
        \text{users}]\mathbf{A}^\top\mathbf{A}` to :obj:`out`, from the
        nonzeros :obj:`(b0, i0)` of :math:`\mathbf{A}[\text{users}]`: a
        SciPy sparse-sparse product where SciPy is installed, else two
        sparse gathers. Returns :math:`\mathbf{X}_1` dense if :obj:`keep`
        (for the next step), and its largest entry."""
        sp = self._scipy()
        if sp is not None:
            import numpy as np
            import scipy.sparse as sps
            ptr = torch.zeros(batch + 1, dtype=torch.long)
            torch.cumsum(count, 0, out=ptr[1:])
            x0 = sps.csr_matrix((np.ones(i0.numel(), dtype=sp[0].dtype),
                                 i0.numpy(), ptr.numpy()),
                                shape=(batch, self.num_items))
            x1 = ((x0 @ sp[1]) @ sp[0]).tocsr()
            val = torch.from_numpy(x1.data).to(self.dtype)
            row = torch.repeat_interleave(
                torch.arange(batch), torch.from_numpy(np.diff(x1.indptr)).long(),
                output_size=val.numel())
            key = row * self.num_items + torch.from_numpy(
                x1.indices).long()
            out.view(-1).index_add_(0, key, val, alpha=coeff)
            x_max = int(val.max()) if val.numel() else 0
            if not keep:
                return None, x_max
            x = torch.zeros(batch, self.num_items, dtype=self.dtype)
            x.view(-1).index_put_((key, ), val)
            return x, x_max
        y = torch.zeros(batch, self.num_users, dtype=self.dtype)
        self._expand(b0, i0, torch.ones(i0.numel(), dtype=self.dtype),
                     self.adj_t, y)
        x = self._times(y, self.adj, self.adj_t, self.user_deg,
                        self.num_items)
        out.add_(x, alpha=coeff)
        return x, int(x.max())

    # -- a batch ------------------------------------------------------------
    def rows(self, users: Tensor, coeffs: Sequence[int], where: str,
             out: Optional[Tensor] = None) -> Tensor:
        r"""Rows :obj:`users` of :math:`\sum_j c_j (\mathbf{A}
        \mathbf{A}^\top)^j \mathbf{A}`, shape :obj:`[B, I]` (written into
        :obj:`out` if given)."""
        adj, adj_t = self.adj, self.adj_t
        batch = users.numel()
        if out is None:
            out = torch.zeros(batch, self.num_items, dtype=self.dtype)
        else:
            out.zero_()
        if batch == 0:
            return out
        # X_0 = A[users], kept as its nonzeros.
        start = adj.rowptr[users]
        count = adj.rowptr[users + 1] - start
        total = int(count.sum())
        ptr = torch.cumsum(count, 0) - count
        b0 = torch.repeat_interleave(torch.arange(batch), count,
                                     output_size=total)
        i0 = adj.col[torch.arange(total) + torch.repeat_interleave(
            start - ptr, count, output_size=total)]
        out.view(-1).index_add_(0, b0 * self.num_items + i0,
                                torch.full((total, ), coeffs[0],
                                           dtype=self.dtype))
        x: Optional[Tensor] = None
        first = True
        x_max = 1 if total else 0   # max entry of X_j (upper bound)
        acc = coeffs[0] * x_max     # max entry of the sum (upper bound)
        for c in coeffs[1:]:
            # Every entry of X A^T A is at most max(X) * dU * dI.
            x_max *= self.max_user_deg * self.max_item_deg
            acc += c * x_max
            self._check(acc, where)
            if first:   # X_1 = A[users] A^T A from the sparse X_0
                first = False
                x, x_max = self._first_step(b0, i0, batch, count, out, c,
                                            keep=len(coeffs) > 2)
                continue
            assert x is not None
            y = self._times(x, adj_t, adj, self.item_deg, self.num_users)
            x = self._times(y, adj, adj_t, self.user_deg, self.num_items)
            x_max = int(x.max())  # tighten the bound with the actual value
            out.add_(x, alpha=c)
        return out

    def __call__(self, users: Tensor, coeffs: Sequence[int], where: str,
                 batch_size: Optional[int] = None) -> Tensor:
        if batch_size is None:
            batch_size = max(1, _WORK_ENTRIES //
                             (self.num_users + self.num_items))
        if users.numel() <= batch_size:
            return self.rows(users, coeffs, where)
        out = torch.empty(users.numel(), self.num_items, dtype=self.dtype)
        for s in range(0, users.numel(), batch_size):
            self.rows(users[s:s + batch_size], coeffs, where,
                      out=out[s:s + batch_size])
        return out


class GTE(torch.nn.Module):
    r"""The learning-less Graph Topology Encoder from the `"How Expressive
    are Graph Neural Networks in Recommendation?"
    <https://arxiv.org/abs/2308.11127>`_ paper (Cai et al., CIKM 2023).

    Items start as one-hot features, users as zeros, and :math:`k` steps of
    residual propagation on the binary (unnormalised) training adjacency
    :math:`\mathbf{A} \in \{0, 1\}^{U \times I}` update both sides
    *synchronously*, each from the other side's previous state (the update
    order of the official code, :obj:`HKUDS/GTE` :obj:`main.py`):

    .. math::
        \mathbf{U}^{(0)} = \mathbf{0}, \quad \mathbf{I}^{(0)} = \mathbf{E},
        \quad
        \mathbf{U}^{(t+1)} = \mathbf{U}^{(t)} + \mathbf{A}\mathbf{I}^{(t)},
        \quad
        \mathbf{I}^{(t+1)} = \mathbf{I}^{(t)} + \mathbf{A}^{\top}
        \mathbf{U}^{(t)},

    and the user-item scores are :math:`\mathbf{U}^{(k)}`. Since this is
    :math:`(\mathbf{E} + \mathbf{M})^k` with :math:`\mathbf{M}` the
    bipartite adjacency, the scores have the closed form

    .. math::
        \mathbf{U}^{(k)} = \sum_{j=0}^{\lfloor (k-1)/2 \rfloor}
        \binom{k}{2j+1} (\mathbf{A}\mathbf{A}^{\top})^j \mathbf{A},

    e.g. :math:`3\mathbf{A} + \mathbf{A}\mathbf{A}^{\top}\mathbf{A}` for
    :math:`k = 3`: the number of :math:`k`-step walks from the user to the
    item when every node also has a self-loop (odd-length walks of the
    bipartite graph, weighted by the ways of interleaving the stays). A
    sequential update (items from the already updated users) would instead
    give :math:`3\mathbf{A} + 4\mathbf{A}\mathbf{A}^{\top}\mathbf{A} +
    (\mathbf{A}\mathbf{A}^{\top})^2\mathbf{A}` for :math:`k = 3`.

    :meth:`scores` computes the closed-form rows of a batch of users from
    the sparse :math:`\mathbf{A}` only, as exact integer counts in
    :obj:`float64` (or :obj:`int64`), with :math:`O(B \cdot (U + I))`
    memory; it plugs into :class:`~pyg_recsys.metrics.Evaluator`
    (:meth:`~pyg_recsys.metrics.Evaluator.evaluate_scores`) and the Trainer
    like :class:`~pyg_recsys.nn.models.MostPopular`. There is nothing to
    train.

    Args:
        edge_index (torch.Tensor): Training (user, item) pairs, shape
            :obj:`[2, E]`, 0-based in both rows; repeated pairs count once.
        num_users (int): The number of users :math:`U`.
        num_items (int): The number of items :math:`I`.
        k (int, optional): The number of propagation steps. (default:
            :obj:`3`)
        dtype (torch.dtype, optional): :obj:`torch.float64` (exact below
            :math:`2^{53}`) or :obj:`torch.int64` (exact below
            :math:`2^{63}`); counts that could exceed the range raise
            :class:`OverflowError`. (default: :obj:`torch.float64`)
        batch_size (int, optional): Users computed at once inside
            :meth:`scores`; chosen to keep the work buffers near 128 MiB if
            :obj:`None`. (default: :obj:`None`)

    Shapes:
        - **input:** users :math:`(B)`
        - **output:** scores :math:`(B, I)`
    """
    def __init__(self, edge_index: Tensor, num_users: int, num_items: int,
                 k: int = 3, dtype: torch.dtype = torch.float64,
                 batch_size: Optional[int] = None):
        super().__init__()
        name = self.__class__.__name__
        self.k = _check_k(k, name)
        if int(num_users) <= 0 or int(num_items) <= 0:
            raise ValueError(f"{name}: needs users and items, got "
                             f"num_users={num_users}, num_items={num_items}")
        if dtype not in _EXACT_LIMIT:
            raise TypeError(f"{name}: dtype must be torch.float64 or "
                            f"torch.int64 (exact counts), got {dtype}")
        if batch_size is not None and int(batch_size) <= 0:
            raise ValueError(f"{name}: batch_size must be positive, got "
                             f"{batch_size}")
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.dtype = dtype
        self.batch_size = None if batch_size is None else int(batch_size)
        edge_index = torch.as_tensor(edge_index)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"{name}: edge_index must have shape [2, E] "
                             f"(user row, item row), got "
                             f"{tuple(edge_index.shape)}")
        if edge_index.is_floating_point():
            raise TypeError(f"{name}: edge_index must hold integer ids")
        edge_index = edge_index.long().cpu()
        for row, what, n in ((0, 'user', self.num_users),
                             (1, 'item', self.num_items)):
            ids = edge_index[row]
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
                raise ValueError(f"{name}: edge_index holds {what} ids "
                                 f"outside [0, {n})")
        adj = _binary_csr(edge_index, self.num_users, self.num_items)
        adj_t, _ = adj.transpose()
        self.register_buffer('rowptr', adj.rowptr, persistent=False)
        self.register_buffer('col', adj.col, persistent=False)
        self.register_buffer('rowptr_t', adj_t.rowptr, persistent=False)
        self.register_buffer('col_t', adj_t.col.long(), persistent=False)
        self._walks: Optional[_WalkCounter] = None

    @classmethod
    def from_graph(cls, graph, k: int = 3, **kwargs) -> 'GTE':
        r"""GTE on the training split of an
        :class:`~pyg_recsys.data.InteractionGraph`."""
        return cls(graph.train, graph.num_users, graph.num_items, k=k,
                   **kwargs)

    @property
    def coefficients(self) -> List[int]:
        r"""The weights :math:`\binom{k}{2j+1}` of
        :math:`(\mathbf{A}\mathbf{A}^\top)^j\mathbf{A}`."""
        return _odd_coefficients(self.k, binomial=True)

    def _counter(self) -> _WalkCounter:
        # Built once (the adjacency never changes), on the CPU.
        if self._walks is None:
            self._walks = self._make_counter()
        return self._walks

    def _make_counter(self) -> _WalkCounter:
        adj = CSR(self.rowptr.cpu(), self.col.cpu(), None, self.num_items)
        adj_t = CSR(self.rowptr_t.cpu(), self.col_t.cpu(), None,
                    self.num_users)
        return _WalkCounter(adj, adj_t, self.num_users, self.num_items,
                            self.dtype)

    @torch.no_grad()
    def scores(self, users: Tensor, adj=None) -> Tensor:
        r"""The GTE scores of every item for :obj:`users`, shape
        :obj:`[B, I]`, in :obj:`dtype` on the model's device (:obj:`adj` is
        ignored: GTE uses its own binary adjacency)."""
        where = f'{self.__class__.__name__}.scores'
        device = self.rowptr.device
        users = _check_users(users, self.num_users, where).cpu()
        out = self._counter()(users, self.coefficients, where,
                              self.batch_size)
        return out.to(device)

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, adj=None,
                  exclude=None, batch_size: int = 1024) -> Tensor:
        r"""See :meth:`EmbeddingRecommender.recommend`."""
        from pyg_recsys.metrics import topk_scores
        users = _check_users(users, self.num_users,
                             f'{self.__class__.__name__}.recommend')
        return topk_scores(self.scores, self.num_users, self.num_items,
                           users, k, exclude=exclude,
                           batch_size=batch_size)[1]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_users}, '
                f'{self.num_items}, k={self.k})')


@torch.no_grad()
def topological_closeness(adj, users: Tensor, items: Optional[Tensor] = None,
                          k: int = 3, dtype: torch.dtype = torch.float64,
                          batch_size: Optional[int] = None) -> Tensor:
    r"""The topological closeness of users and items: the number of walks
    of length at most :math:`k` between them in the bipartite interaction
    graph,

    .. math::
        \mathrm{CL}_k(u, i) = \sum_{j=0}^{\lfloor (k-1)/2 \rfloor}
        \big[(\mathbf{A}\mathbf{A}^{\top})^j \mathbf{A}\big]_{ui}

    (user-item walks have odd length). For the paper's default
    :math:`k = 3`, :math:`\mathbf{A} + \mathbf{A}\mathbf{A}^{\top}
    \mathbf{A}`, this is what the official :obj:`HKUDS/GTE` :obj:`tc.py`
    computes; it differs from the :class:`GTE` scores
    :math:`3\mathbf{A} + \mathbf{A}\mathbf{A}^{\top}\mathbf{A}` only on
    training pairs, so both rank the unobserved items of a user alike.

    Args:
        adj: The interactions: an :class:`~pyg_recsys.data.InteractionGraph`
            (its training split), a binary :obj:`torch.sparse` matrix of
            shape :obj:`[U, I]` or a :class:`~pyg_recsys.ops.CSR`.
        users (torch.Tensor): User ids, shape :obj:`[B]`.
        items (torch.Tensor, optional): Item ids: shape :obj:`[B]` for one
            item per user (pairs), or :obj:`[B, M]` for :obj:`M` items per
            user; all items if :obj:`None`. (default: :obj:`None`)
        k (int, optional): The longest walk. (default: :obj:`3`)
        dtype (torch.dtype, optional): :obj:`torch.float64` or
            :obj:`torch.int64`, see :class:`GTE`.
            (default: :obj:`torch.float64`)
        batch_size (int, optional): Users computed at once. (default:
            :obj:`None`)

    Returns:
        torch.Tensor: shape :obj:`[B, I]`, :obj:`[B]` or :obj:`[B, M]`.
    """
    where = 'topological_closeness'
    k = _check_k(k, where)
    if dtype not in _EXACT_LIMIT:
        raise TypeError(f"{where}: dtype must be torch.float64 or "
                        f"torch.int64, got {dtype}")
    csr, num_users, num_items = _adjacency_of(adj, where)
    users = _check_users(users, num_users, where).cpu()
    if items is not None:
        items = torch.as_tensor(items)
        if items.is_floating_point() or items.dtype == torch.bool:
            raise TypeError(f"{where}: item ids must be integers")
        items = items.long().cpu()
        if items.dim() not in (1, 2) or items.size(0) != users.numel():
            raise ValueError(f"{where}: items must have shape [B] or [B, M] "
                             f"with B = len(users) = {users.numel()}, got "
                             f"{tuple(items.shape)}")
        if items.numel() and (int(items.min()) < 0
                              or int(items.max()) >= num_items):
            raise ValueError(f"{where}: item ids must lie in "
                             f"[0, {num_items})")
    adj_t, _ = csr.transpose()
    adj_t = adj_t._replace(col=adj_t.col.long())
    counter = _WalkCounter(csr, adj_t, num_users, num_items, dtype)
    coeffs = _odd_coefficients(k, binomial=False)
    if items is None:
        return counter(users, coeffs, where, batch_size)
    # Gather per user batch, so only [batch, I] is ever held.
    step = batch_size or max(1, _WORK_ENTRIES // (num_users + num_items))
    pick = items.view(users.numel(), -1)
    parts = []
    for s in range(0, users.numel(), step):
        rows = counter.rows(users[s:s + step], coeffs, where)
        parts.append(rows.gather(1, pick[s:s + step]))
    out = torch.cat(parts) if parts else \
        torch.zeros(pick.shape, dtype=dtype)
    return out.view(items.shape)
