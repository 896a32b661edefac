from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor, Size
from torch_geometric.utils import is_sparse, softmax

from pyg_recsys.ops import spmm, to_csr

AGGREGATORS = ('mean', 'user_attention')


class BehaviorConv(MessagePassing):
    r"""The behaviour aggregation of the `"SimpleX: A Simple and Strong
    Baseline for Collaborative Filtering" <https://arxiv.org/abs/2109.12613>`_
    paper: every user (target) pools the vectors of the items it interacted
    with (sources) and maps the pool linearly,

    .. math::
        \mathbf{h}_u = \mathbf{W}_v \sum_{i \in \mathcal{N}(u)}
        \alpha_{ui} \mathbf{x}_i,

    with :math:`\alpha_{ui} = 1 / |\mathcal{N}(u)|` (:obj:`'mean'`) or, for
    :obj:`'user_attention'`, a softmax over the user's items of
    :math:`\tanh(\mathbf{W}_k \mathbf{x}_i + \mathbf{b}_k)^\top \mathbf{x}_u`
    queried by the user's own vector :math:`\mathbf{x}_u`. A user without
    items gets :math:`\mathbf{0}`.

    SimpleX's code pads histories and computes the attention's softmax with
    the padded positions set to a logit of 0 and kept in the denominator;
    here the softmax runs over the user's items only (PyG's
    :func:`~torch_geometric.utils.softmax`), which is the paper's equation.

    Args:
        channels (int): The size :math:`d` of item and user vectors.
        aggregator (str, optional): :obj:`'mean'` or :obj:`'user_attention'`.
            (default: :obj:`'mean'`)
        **kwargs (optional): Arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** item vectors :math:`(|\mathcal{V}_s|, d)` and user
          vectors :math:`(|\mathcal{V}_t|, d)` as a tuple (the user vectors
          are needed by :obj:`'user_attention'` only), edge indices
          :math:`(2, |\mathcal{E}|)` from items to users, or a sparse
          :math:`(|\mathcal{V}_t|, |\mathcal{V}_s|)` adjacency (PyG's
          :obj:`adj_t`).
        - **output:** :math:`(|\mathcal{V}_t|, d)`
    """
    def __init__(self, channels: int, aggregator: str = 'mean', **kwargs):
        if aggregator not in AGGREGATORS:
            raise ValueError(f"BehaviorConv: aggregator must be one of "
                             f"{AGGREGATORS}, got '{aggregator}'")
        kwargs.setdefault('aggr', 'mean' if aggregator == 'mean' else 'sum')
        super().__init__(**kwargs)
        self.channels = channels
        self.aggregator = aggregator
        self.lin_v = Linear(channels, channels, bias=False)
        self.lin_k = Linear(channels, channels) \
            if aggregator == 'user_attention' else None
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.lin_v.reset_parameters()
        if self.lin_k is not None:
            self.lin_k.reset_parameters()

    def forward(self, x: Tuple[Tensor, OptTensor], edge_index: Adj,
                size: Size = None) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        if self.lin_k is not None and x_dst is None:
            raise ValueError("BehaviorConv: 'user_attention' needs the "
                             "users' vectors (x = (items, users))")
        if is_sparse(edge_index):  # adj_t: rows are users, columns items
            return self.lin_v(self._sparse(x_src, x_dst, edge_index))
        if size is None:
            size = (x_src.size(0), x_src.size(0) if x_dst is None
                    else x_dst.size(0))
        alpha: Optional[Tensor] = None
        if self.lin_k is not None:
            src, dst = edge_index[0], edge_index[1]
            alpha = softmax(self._logits(x_src, x_dst, src, dst), dst,
                            num_nodes=size[1])
        out = self.propagate(edge_index, x=(x_src, x_dst), alpha=alpha,
                             size=size)
        return self.lin_v(out)

    def _logits(self, x_src: Tensor, x_dst: Tensor, src: Tensor,
                dst: Tensor) -> Tensor:
        key = torch.tanh(self.lin_k(x_src.index_select(0, src)))
        return (key * x_dst.index_select(0, dst)).sum(-1)

    def _sparse(self, x_src: Tensor, x_dst: OptTensor, adj_t) -> Tensor:
        r"""The pooling as one sparse product :math:`\mathbf{A}_\alpha
        \mathbf{X}` on the compiled kernels (:func:`pyg_recsys.ops.spmm`),
        the weights :math:`\alpha` as the stored values: one gather of the
        items per edge for the attention logits, none for the mean."""
        csr = to_csr(adj_t)
        if csr.num_cols != x_src.size(0) or (
                x_dst is not None and csr.num_rows != x_dst.size(0)):
            raise ValueError(f"BehaviorConv: the adjacency is "
                             f"{csr.num_rows}x{csr.num_cols} but there are "
                             f"{x_src.size(0)} items"
                             + ('' if x_dst is None else
                                f" and {x_dst.size(0)} users"))
        row, col = csr.row(), csr.col.to(torch.int64)
        if self.lin_k is None:
            count = csr.rowptr.diff().to(x_src.dtype)
            value = count.clamp(min=1).reciprocal().index_select(0, row)
        else:
            value = softmax(self._logits(x_src, x_dst, col, row), row,
                            num_nodes=csr.num_rows)
        return spmm(csr, x_src, value=value)

    def message(self, x_j: Tensor, alpha: OptTensor) -> Tensor:
        return x_j if alpha is None else x_j * alpha.unsqueeze(-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f"aggregator='{self.aggregator}')")
