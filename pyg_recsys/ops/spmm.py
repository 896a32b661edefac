r"""Sparse (CSR) times dense products, the hot loop of every propagation layer.

Three paths compute the same :math:`\mathbf{Y} = \mathbf{A}\mathbf{X}`:

* :func:`spmm_reference`: a plain gather / :obj:`index_add_` over the stored
  entries; slow, obviously correct, and the reference of the tests.
* the pure-PyTorch fast path: :func:`torch.nn.functional.embedding_bag` over
  the CSR rows with per-entry weights, whose backward is the same call on the
  transposed matrix (the matrix itself when it is marked symmetric);
* compiled kernels from :obj:`pyg_recsys._C`, where built (see
  :obj:`pyg_recsys.typing.WITH_EXT`).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

import pyg_recsys.typing
from pyg_recsys.ops.csr import CSR, pattern_transpose_of, to_csr, transpose_of


def use_extension(x: Tensor) -> bool:
    r"""Whether the compiled kernels handle :obj:`x` (read at call time, so
    tests can switch :obj:`pyg_recsys.typing.WITH_EXT` off)."""
    if not pyg_recsys.typing.WITH_EXT:
        return False
    if not pyg_recsys.typing.PREFER_COMPILED.get(x.device.type, False):
        return False
    if x.dtype not in (torch.float32, torch.float64):
        return False
    return x.device.type == 'cpu' or (x.device.type == 'cuda' and
                                      pyg_recsys.typing.WITH_CUDA_EXT)


def spmm_reference(csr: CSR, x: Tensor) -> Tensor:
    r"""Reference product :math:`\mathbf{A}\mathbf{X}` by gather and
    :obj:`index_add_`; differentiable by autograd in :obj:`x` and values."""
    msg = x.index_select(0, csr.col.to(torch.int64))
    if csr.value is not None:
        msg = msg * csr.value.view(-1, 1).to(msg.dtype)
    out = x.new_zeros(csr.num_rows, x.size(1))
    return out.index_add(0, csr.row(), msg)


def _needs_graph(*tensors: Optional[Tensor]) -> bool:
    # The compiled kernels have no autograd of their own: inputs that need a
    # graph (double backward) take the differentiable PyTorch path.
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)


def _bag(csr: CSR, x: Tensor, value: Optional[Tensor]) -> Tensor:
    r"""The product :math:`\mathbf{A}\mathbf{X}` by the compiled kernel or,
    without it, by :func:`~torch.nn.functional.embedding_bag`."""
    if value is not None:
        value = value.to(x.dtype)
    if use_extension(x) and not _needs_graph(x, value):
        return torch.ops.pyg_recsys.spmm_csr(csr.rowptr, csr.col, value, x)
    if csr.num_rows == 0 or x.size(1) == 0:
        return x.new_zeros(csr.num_rows, x.size(1))
    if csr.nnz == 0 or x.size(0) == 0:
        return x.new_zeros(csr.num_rows, x.size(1))
    col = csr.col if csr.col.dtype == torch.int64 else csr.col.long()
    weights = None if value is None else value.to(x.dtype).contiguous()
    return F.embedding_bag(col, x, csr.rowptr, mode='sum',
                           per_sample_weights=weights,
                           include_last_offset=True)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj_box, csr_tuple, value, x):
        csr = CSR(*csr_tuple)
        ctx.adj = adj_box[0]
        ctx.csr = csr
        ctx.save_for_backward(value, x)
        return _bag(csr, x, value)

    @staticmethod
    def backward(ctx, grad_out):
        value, x = ctx.saved_tensors
        csr = ctx.csr._replace(value=value)
        grad_value = grad_x = None
        grad_out = grad_out.contiguous()
        if ctx.needs_input_grad[3]:
            csr_t, _ = transpose_of(ctx.adj, csr)
            grad_x = _bag(csr_t, grad_out, csr_t.value)
        if ctx.needs_input_grad[2]:
            grad_value = _sddmm(csr, grad_out, x).to(value.dtype)
        return None, None, grad_value, grad_x


def _sddmm(csr: CSR, a: Tensor, b: Tensor) -> Tensor:
    if use_extension(a) and a.dtype == b.dtype and not _needs_graph(a, b):
        return torch.ops.pyg_recsys.sddmm_csr(csr.rowptr, csr.col, a, b)
    return (a.index_select(0, csr.row()) *
            b.index_select(0, csr.col.long())).sum(-1)


class _SDDMM(torch.autograd.Function):
    # Nothing of size nnz x F is kept: the gradients are sparse products
    # with the output gradient as the stored values.
    @staticmethod
    def forward(ctx, adj_box, csr_tuple, a, b):
        csr = CSR(*csr_tuple)
        ctx.adj, ctx.csr = adj_box[0], csr
        ctx.save_for_backward(a, b)
        return _sddmm(csr, a, b)

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[2]:  # grad_a = G b, G[r, c] = grad_out[e]
            grad_a = spmm(ctx.csr, b, value=grad_out)
        if ctx.needs_input_grad[3]:  # grad_b = G^T a
            pattern_t, perm = pattern_transpose_of(ctx.adj, ctx.csr)
            grad_b = spmm(pattern_t, a, value=grad_out[perm])
        return None, None, grad_a, grad_b


def sddmm(adj, a: Tensor, b: Tensor) -> Tensor:
    r"""Sampled dense-dense product: :math:`\langle \mathbf{a}_{r(e)},
    \mathbf{b}_{c(e)} \rangle` for every stored entry :math:`e` of
    :obj:`adj` (row :math:`r(e)`, column :math:`c(e)`; the stored values are
    not used), shape :obj:`[nnz]`. This is the gradient of
    :math:`\mathbf{A}\mathbf{B}` with respect to the stored values of
    :math:`\mathbf{A}` for the output gradient :math:`\mathbf{a}`.

    Differentiable in :obj:`a` and :obj:`b` with :math:`O((N + nnz) F)`
    work and no :math:`nnz \times F` intermediate kept for backward.

    Args:
        adj: The sparsity pattern: a :class:`~pyg_recsys.ops.CSR`, a
            :obj:`torch.sparse` or :obj:`SparseTensor` matrix, shape
            :obj:`[N, M]`. Marked symmetric (see
            :func:`~pyg_recsys.ops.mark_symmetric`), its pattern is reused
            for the gradient of :obj:`b`.
        a (torch.Tensor): Row features, shape :obj:`[N, F]`.
        b (torch.Tensor): Column features, shape :obj:`[M, F]`.
    """
    csr = to_csr(adj)
    if a.dim() != 2 or b.dim() != 2 or a.size(1) != b.size(1) or \
            a.size(0) != csr.num_rows or b.size(0) != csr.num_cols:
        raise ValueError(f"sddmm: needs a [{csr.num_rows}, F] and b "
                         f"[{csr.num_cols}, F], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if not _needs_graph(a, b):
        return _sddmm(csr, a, b)
    pattern = (csr.rowptr, csr.col, None, csr.num_cols)
    return _SDDMM.apply((adj, ), pattern, a, b)


def spmm(adj, x: Tensor, value: Optional[Tensor] = None) -> Tensor:
    r"""Multiplies the sparse matrix :obj:`adj` (:obj:`torch.sparse` CSR or
    COO, :obj:`torch_sparse.SparseTensor` or :class:`~pyg_recsys.ops.CSR`)
    with the dense :obj:`x`.

    Gradients flow to :obj:`x` and, when they require it, to the stored
    values of :obj:`adj` (an SDDMM). A transposed copy of the pattern is built
    once per adjacency and cached, unless the adjacency was declared symmetric
    with :func:`pyg_recsys.ops.mark_symmetric`.

    Args:
        adj: The sparse matrix, shape :obj:`[N, M]`.
        x (torch.Tensor): The dense matrix, shape :obj:`[M, F]`.
        value (torch.Tensor, optional): Values that replace the stored ones
            (one per stored entry, in CSR order), e.g. computed edge weights
            that require gradients: they flow to :obj:`value` directly, never
            through a sparse tensor. If :obj:`adj` is marked symmetric,
            :obj:`value` must be symmetric too. (default: :obj:`None`)

    Returns:
        torch.Tensor: shape :obj:`[N, F]`.
    """
    csr = to_csr(adj)
    if x.dim() != 2:
        raise ValueError(f"spmm: expected a 2-D dense input, got shape "
                         f"{tuple(x.shape)}")
    if x.size(0) != csr.num_cols:
        raise ValueError(f"spmm: the adjacency has {csr.num_cols} columns "
                         f"but the input has {x.size(0)} rows")
    if value is None:
        value = csr.value
    elif value.dim() != 1 or value.numel() != csr.nnz:
        raise ValueError(f"spmm: 'value' must hold one entry per stored "
                         f"entry ({csr.nnz}), got shape {tuple(value.shape)}")
    if value is not None and value.dtype != x.dtype and not value.requires_grad:
        value = value.to(x.dtype)
    pattern = (csr.rowptr, csr.col, None, csr.num_cols)
    # The adjacency travels boxed so autograd does not treat it as an input.
    return _SpMM.apply((adj, ), pattern, value, x)
