r"""Light (linear) propagation: :math:`\sum_k \alpha_k \mathbf{A}^k \mathbf{X}`."""
from typing import Sequence, Union

from torch import Tensor

from pyg_recsys.ops.spmm import spmm


def light_propagate(adj, x: Tensor, num_layers: int,
                    alpha: Union[float, Sequence[float], Tensor, None] = None
                    ) -> Tensor:
    r"""Computes :math:`\sum_{k=0}^{K} \alpha_k \mathbf{A}^k \mathbf{X}`, the
    LightGCN read-out over :obj:`num_layers` propagation steps.

    Args:
        adj: The (normalised) sparse adjacency, shape :obj:`[N, N]`.
        x (torch.Tensor): Layer-0 features, shape :obj:`[N, F]`.
        num_layers (int): The number of propagation steps :math:`K`.
        alpha (float or sequence or torch.Tensor, optional): Layer weights
            :math:`\alpha_0..\alpha_K`; a scalar is used for every layer.
            (default: :obj:`1 / (K + 1)`)
    """
    if num_layers < 0:
        raise ValueError(f"light_propagate: num_layers must be >= 0, got "
                         f"{num_layers}")
    if alpha is None:
        alpha = 1.0 / (num_layers + 1)
    if isinstance(alpha, (int, float)):
        alpha = [float(alpha)] * (num_layers + 1)
    if len(alpha) != num_layers + 1:
        raise ValueError(f"light_propagate: expected {num_layers + 1} layer "
                         f"weights, got {len(alpha)}")
    out = x * alpha[0]
    for k in range(1, num_layers + 1):
        x = spmm(adj, x)
        out = out + x * alpha[k]
    return out
