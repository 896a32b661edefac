r"""Light (linear) propagation: :math:`\sum_k \alpha_k \mathbf{A}^k \mathbf{X}`."""
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from pyg_recsys.ops.csr import CSR, to_csr, transpose_of
from pyg_recsys.ops.spmm import _bag, _needs_graph, spmm, use_extension


def _weights(num_layers: int, alpha) -> List[float]:
    if num_layers < 0:
        raise ValueError(f"light_propagate: num_layers must be >= 0, got "
                         f"{num_layers}")
    if alpha is None:
        alpha = 1.0 / (num_layers + 1)
    if isinstance(alpha, (int, float)):
        return [float(alpha)] * (num_layers + 1)
    if isinstance(alpha, Tensor):
        alpha = alpha.detach().reshape(-1).tolist()
    alpha = [float(a) for a in alpha]
    if len(alpha) != num_layers + 1:
        raise ValueError(f"light_propagate: expected {num_layers + 1} layer "
                         f"weights, got {len(alpha)}")
    return alpha


def _propagate(csr: CSR, x: Tensor, alpha: List[float],
               bf16: bool = False) -> Tensor:
    if use_extension(x) and not _needs_graph(x, csr.value):
        value = None if csr.value is None else csr.value.to(x.dtype)
        return torch.ops.pyg_recsys.light_propagate_csr(
            csr.rowptr, csr.col, value, x, alpha, bf16)
    # Horner's rule, as the kernels: y = alpha_K x, then y <- A y + alpha_k x
    # for k = K-1 .. 0; the rows gathered (y, and x itself first) are what
    # bfloat16 storage rounds.
    if len(alpha) == 1:
        return x * alpha[0]
    y = x
    for k in range(len(alpha) - 2, -1, -1):
        if bf16:
            y = y.to(torch.bfloat16).to(x.dtype)
        y = _bag(csr, y, csr.value)
        if k == len(alpha) - 2:
            y.mul_(alpha[-1])
        y.add_(x, alpha=alpha[k])  # in place: no per-layer temporary
    return y


class _LightPropagate(torch.autograd.Function):
    # The map X -> sum_k alpha_k A^k X is linear, so nothing but the
    # adjacency is kept for backward: grad = sum_k alpha_k (A^T)^k G.
    @staticmethod
    def forward(ctx, adj_box, csr_tuple, x, alpha, bf16):
        csr = CSR(*csr_tuple)
        ctx.adj, ctx.csr, ctx.alpha, ctx.bf16 = adj_box[0], csr, alpha, bf16
        return _propagate(csr, x, alpha, bf16)

    @staticmethod
    def backward(ctx, grad_out):
        csr_t, _ = transpose_of(ctx.adj, ctx.csr)
        return None, None, _propagate(csr_t, grad_out.contiguous(),
                                      ctx.alpha, ctx.bf16), None, None


def light_propagate(adj, x: Tensor, num_layers: int,
                    alpha: Union[float, Sequence[float], Tensor, None] = None,
                    storage_dtype: Optional[torch.dtype] = None) -> Tensor:
    r"""Computes :math:`\sum_{k=0}^{K} \alpha_k \mathbf{A}^k \mathbf{X}`, the
    LightGCN read-out over :obj:`num_layers` propagation steps, in one call.

    Memory is :math:`O(N F)` whatever :math:`K`: no per-layer activation is
    kept for backward, which applies the same sum with :math:`\mathbf{A}^\top`
    (:math:`\mathbf{A}` itself when it is marked symmetric, see
    :func:`~pyg_recsys.ops.mark_symmetric`). When the stored values of
    :obj:`adj` require gradients, the layers are composed from
    :func:`~pyg_recsys.ops.spmm` instead so that those gradients flow.

    Args:
        adj: The (normalised) sparse adjacency, shape :obj:`[N, N]`.
        x (torch.Tensor): Layer-0 features, shape :obj:`[N, F]`.
        num_layers (int): The number of propagation steps :math:`K`.
        alpha (float or sequence or torch.Tensor, optional): Layer weights
            :math:`\alpha_0..\alpha_K`; a scalar is used for every layer.
            (default: :obj:`1 / (K + 1)`)
        storage_dtype (torch.dtype, optional): :obj:`torch.bfloat16` keeps
            the rows that every step gathers in bfloat16, halving the bytes
            moved, while sums stay float32. The sum is evaluated by Horner's
            rule, :math:`\mathbf{Y} \leftarrow \mathbf{A}\mathbf{Y} +
            \alpha_k \mathbf{X}` from :math:`\mathbf{Y} = \alpha_K
            \mathbf{X}`, so the rounded rows are :math:`\mathbf{X}` and the
            inner Horner terms (the :math:`\alpha_k \mathbf{X}` added stay
            float32); the result then
            carries a relative error of about :math:`2^{-9}` per step (the
            gradient likewise). Float32 :obj:`x` only; it runs in the
            compiled kernels where they are used (CPU and CUDA), elsewhere
            it is emulated by rounding.
            (default: :obj:`None`, the dtype of :obj:`x`)
    """
    alpha = _weights(num_layers, alpha)
    bf16 = storage_dtype is not None and storage_dtype != x.dtype
    if bf16 and (storage_dtype != torch.bfloat16 or x.dtype != torch.float32):
        raise ValueError(f"light_propagate: storage_dtype must be None or "
                         f"torch.bfloat16 for float32 features, got "
                         f"{storage_dtype} for {x.dtype} features")
    csr = to_csr(adj)
    if x.dim() != 2 or x.size(0) != csr.num_cols or \
            csr.num_rows != csr.num_cols:
        raise ValueError(f"light_propagate: needs a square adjacency and "
                         f"features with one row per node, got adjacency "
                         f"{csr.num_rows}x{csr.num_cols} and features "
                         f"{tuple(x.shape)}")
    if csr.value is not None and csr.value.requires_grad:
        if bf16:
            raise ValueError("light_propagate: bfloat16 storage does not "
                             "support edge-value gradients")
        out = x * alpha[0]
        for a in alpha[1:]:
            x = spmm(adj, x)
            out = out + x * a
        return out
    pattern = (csr.rowptr, csr.col, csr.value, csr.num_cols)
    return _LightPropagate.apply((adj, ), pattern, x, alpha, bf16)
