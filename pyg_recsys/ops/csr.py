"""CSR views of sparse adjacencies, and their cached transposes."""
import weakref
from typing import Dict, NamedTuple, Optional, Tuple

import torch
from torch import Tensor


class CSR(NamedTuple):
    r"""A sparse matrix in compressed-row form.

    Attributes:
        rowptr (torch.Tensor): Row offsets, shape :obj:`[num_rows + 1]`, int64.
        col (torch.Tensor): Column of every stored entry, shape :obj:`[nnz]`.
        value (torch.Tensor, optional): Value of every stored entry, or
            :obj:`None` for an all-ones pattern.
        num_cols (int): The number of columns.
    """
    rowptr: Tensor
    col: Tensor
    value: Optional[Tensor]
    num_cols: int

    @property
    def num_rows(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def nnz(self) -> int:
        return self.col.numel()

    def row(self) -> Tensor:
        """The row of every stored entry (COO row indices)."""
        counts = self.rowptr.diff()
        return torch.repeat_interleave(
            torch.arange(self.num_rows, device=counts.device), counts,
            output_size=self.nnz)

    def transpose(self) -> Tuple['CSR', Tensor]:
        """Returns the transposed matrix and the permutation ``perm`` such
        that ``value_t = value[perm]``."""
        row = self.row()
        key = self.col.to(torch.int64) * max(self.num_rows, 1) + row
        perm = torch.argsort(key, stable=True)
        col_t = row[perm].to(self.col.dtype)
        counts = torch.bincount(self.col.to(torch.int64),
                                minlength=self.num_cols)
        rowptr_t = torch.zeros(self.num_cols + 1, dtype=torch.int64,
                               device=self.rowptr.device)
        torch.cumsum(counts, 0, out=rowptr_t[1:])
        value_t = None if self.value is None else self.value[perm]
        return CSR(rowptr_t, col_t, value_t, self.num_rows), perm


def to_csr(adj: Tensor) -> CSR:
    r"""Reads a :obj:`torch.sparse` (CSR or COO) or :obj:`SparseTensor`
    adjacency as a :class:`CSR` without copying where possible (a
    :class:`CSR` is returned as is)."""
    if isinstance(adj, CSR):
        return adj
    if isinstance(adj, Tensor):
        if adj.layout == torch.sparse_csr:
            return CSR(adj.crow_indices().to(torch.int64), adj.col_indices(),
                       adj.values(), adj.size(1))
        if adj.layout == torch.sparse_coo:
            return to_csr(adj.coalesce().to_sparse_csr())
        raise TypeError(f"expected a sparse adjacency, got a tensor with "
                        f"layout {adj.layout}")
    if hasattr(adj, 'csr'):  # torch_sparse.SparseTensor
        rowptr, col, value = adj.csr()
        return CSR(rowptr, col, value, adj.size(1))
    raise TypeError(f"expected a sparse adjacency, got {type(adj).__name__}")


# Transposes are cached per adjacency object (keyed by id, dropped when the
# adjacency is garbage-collected). A symmetric adjacency is its own transpose.
_TRANSPOSES: Dict[int, Tuple[CSR, Optional[Tensor]]] = {}
_SYMMETRIC = object()


_PATTERN_TRANSPOSES: Dict[int, Tuple[CSR, Tensor]] = {}


def _forget(key: int) -> None:
    _TRANSPOSES.pop(key, None)
    _PATTERN_TRANSPOSES.pop(key, None)


def mark_symmetric(adj: Tensor) -> Tensor:
    r"""Declares that :obj:`adj` equals its transpose, so that backward passes
    reuse it instead of building a transposed copy. Returns :obj:`adj`."""
    key = id(adj)
    if key not in _TRANSPOSES:
        weakref.finalize(adj, _forget, key)
    _TRANSPOSES[key] = (_SYMMETRIC, None)  # type: ignore[assignment]
    return adj


_NORMALIZED: Dict[int, bool] = {}


def mark_normalized(adj: Tensor) -> Tensor:
    r"""Declares that :obj:`adj` is already the symmetric-normalised
    adjacency :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` (as
    :meth:`pyg_recsys.data.InteractionGraph.norm_adj` builds it), so that
    models propagate on it as given instead of normalising it again, as
    PyG's layers do with any other sparse input. Returns :obj:`adj`."""
    key = id(adj)
    if key not in _NORMALIZED:
        weakref.finalize(adj, _NORMALIZED.pop, key, None)
    _NORMALIZED[key] = True
    return adj


def is_marked_normalized(adj) -> bool:
    return isinstance(adj, Tensor) and id(adj) in _NORMALIZED


def is_marked_symmetric(adj: Tensor) -> bool:
    entry = _TRANSPOSES.get(id(adj))
    return entry is not None and entry[0] is _SYMMETRIC


def transpose_of(adj: Tensor, csr: CSR) -> Tuple[CSR, Optional[Tensor]]:
    r"""The transpose of :obj:`csr` (read from :obj:`adj`) and the value
    permutation, or :obj:`(csr, None)` when :obj:`adj` is marked symmetric.

    Only the sparsity pattern is cached per adjacency object; values are
    always permuted from the current :obj:`csr.value`, so adjacencies whose
    values change between calls stay correct.
    """
    entry = _TRANSPOSES.get(id(adj))
    if entry is not None and entry[0] is _SYMMETRIC:
        return csr, None
    if entry is None:
        pattern, perm = CSR(csr.rowptr, csr.col, None, csr.num_cols).transpose()
        try:
            weakref.finalize(adj, _forget, id(adj))
            _TRANSPOSES[id(adj)] = (pattern, perm)
        except TypeError:  # not weak-referenceable: do not cache
            pass
    else:
        pattern, perm = entry
    value_t = None if csr.value is None else csr.value[perm]
    return pattern._replace(value=value_t), perm


def pattern_transpose_of(adj, csr: CSR) -> Tuple[CSR, Tensor]:
    r"""The transposed pattern of :obj:`csr` (no values) and the permutation
    that maps every stored entry of the transpose to its entry in
    :obj:`csr`, cached per :obj:`adj` object. Unlike :func:`transpose_of`
    this never takes the symmetric shortcut: it serves values that are not
    symmetric on a symmetric pattern (such as the gradient of an SDDMM)."""
    entry = _PATTERN_TRANSPOSES.get(id(adj))
    if entry is not None:
        return entry
    entry = CSR(csr.rowptr, csr.col, None, csr.num_cols).transpose()
    try:
        weakref.finalize(adj, _forget, id(adj))
        _PATTERN_TRANSPOSES[id(adj)] = entry
    except TypeError:  # not weak-referenceable: do not cache
        pass
    return entry
