r"""Light propagation with the rows of the node table partitioned over the
ranks of :mod:`torch.distributed` (first version: the layer inputs are
all-gathered; exchanging only the halo rows is not built yet)."""
from typing import List, Sequence, Tuple, Union

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_recsys.ops.csr import CSR, to_csr, transpose_of
from pyg_recsys.ops.propagate import _weights
from pyg_recsys.ops.spmm import spmm


def row_partition(rowptr: Tensor, world_size: int) -> List[Tuple[int, int]]:
    r"""Contiguous row ranges, one per rank, of about equal work (stored
    entries plus one per row), as the compiled kernels split rows over
    threads."""
    if world_size <= 0:
        raise ValueError(f"row_partition: world_size must be positive, got "
                         f"{world_size}")
    rowptr = rowptr.to(torch.int64).cpu()
    num_rows = rowptr.numel() - 1
    work = rowptr + torch.arange(num_rows + 1)
    targets = torch.arange(1, world_size) * int(work[-1]) // world_size
    cuts = torch.searchsorted(work, targets).tolist()
    bounds = [0] + [min(c, num_rows) for c in cuts] + [num_rows]
    return [(bounds[r], bounds[r + 1]) for r in range(world_size)]


def _rows(csr: CSR, r0: int, r1: int) -> CSR:
    lo, hi = int(csr.rowptr[r0]), int(csr.rowptr[r1])
    return CSR(csr.rowptr[r0:r1 + 1] - lo, csr.col[lo:hi],
               None if csr.value is None else csr.value[lo:hi], csr.num_cols)


def gather_rows(local: Tensor, parts: Sequence[Tuple[int, int]],
                group=None) -> Tensor:
    r"""Concatenates every rank's :obj:`local` rows (rank :obj:`r` holds
    the rows :obj:`parts[r]`) on every rank: one :func:`all_gather`, each
    share padded to the longest (gloo moves CPU tensors only)."""
    longest = max(b - a for a, b in parts)
    device = 'cpu' if dist.get_backend(group) == 'gloo' else local.device
    mine = local.new_zeros(longest, *local.shape[1:], device=device)
    mine[:local.size(0)] = local.to(device)
    out = [torch.empty_like(mine) for _ in parts]
    dist.all_gather(out, mine, group=group)
    return torch.cat([o[:b - a] for o, (a, b) in zip(out, parts)]).to(
        local.device)


def _horner(block: CSR, x: Tensor, alpha: List[float], parts, group):
    # sum_k alpha_k A^k X on this rank's rows, by Horner's rule; every layer
    # multiplies this rank's rows of A by the all-gathered layer input.
    y = x * alpha[-1]
    for k in range(len(alpha) - 2, -1, -1):
        y = spmm(block, gather_rows(y, parts, group)) + alpha[k] * x
    return y


class _PartitionedPropagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, block, block_t, alpha, parts, group):
        ctx.block_t, ctx.alpha, ctx.parts, ctx.group = (block_t, alpha,
                                                        parts, group)
        with torch.no_grad():
            return _horner(block, x, alpha, parts, group)

    @staticmethod
    def backward(ctx, grad):
        # The map is linear: the gradient is the same sum with A^T, whose
        # rows of this rank are the columns of this rank's rows of A.
        with torch.no_grad():
            out = _horner(ctx.block_t, grad.contiguous(), ctx.alpha,
                          ctx.parts, ctx.group)
        return out, None, None, None, None, None


def partitioned_propagate(adj, x_local: Tensor, num_layers: int,
                          alpha: Union[float, Sequence[float], None] = None,
                          group=None) -> Tensor:
    r""":math:`\sum_{k=0}^{K} \alpha_k \hat{\mathbf{A}}^k \mathbf{X}` (as
    :func:`~pyg_recsys.ops.light_propagate`) when every rank holds only its
    rows of :math:`\mathbf{X}`: the rows :obj:`row_partition(rowptr,
    world_size)[rank]` of :obj:`adj`. Returns this rank's rows of the
    result; differentiable in :obj:`x_local` (backward runs the same sum
    with :math:`\hat{\mathbf{A}}^\top`, split the same way).

    Every rank passes the whole adjacency (the pattern and values are
    :math:`O(\text{nnz})`, the node table is what is partitioned) and
    calls this collectively. Per layer, forward and backward each
    all-gather the layer input: :math:`(w - 1) / w \cdot N d` values
    received per rank.
    """
    from pyg_recsys.distributed import world
    rank, size = world(group)
    csr = to_csr(adj)
    parts = row_partition(csr.rowptr, size)
    r0, r1 = parts[rank]
    if x_local.dim() != 2 or x_local.size(0) != r1 - r0:
        raise ValueError(f"partitioned_propagate: rank {rank} owns rows "
                         f"{r0}:{r1} ({r1 - r0} rows), got x_local of shape "
                         f"{tuple(x_local.shape)}")
    csr_t, _ = transpose_of(adj, csr)
    alpha = _weights(num_layers, alpha)
    return _PartitionedPropagate.apply(x_local, _rows(csr, r0, r1),
                                       _rows(csr_t, r0, r1), alpha, parts,
                                       group)
