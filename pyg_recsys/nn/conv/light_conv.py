from typing import Optional

from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import Adj, OptTensor, SparseTensor

from pyg_recsys.ops import spmm


class LightConv(MessagePassing):
    r"""The light graph convolution operator from the `"LightGCN:
    Simplifying and Powering Graph Convolution Network for Recommendation"
    <https://arxiv.org/abs/2002.02126>`_ paper.

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)}
        \frac{e_{j,i}}{\sqrt{\deg(i)\deg(j)}} \mathbf{x}_j

    A drop-in replacement for :class:`torch_geometric.nn.conv.LGConv` (same
    outputs on the same input) whose sparse path runs on
    :func:`pyg_recsys.ops.spmm`. Pass a pre-normalised adjacency (such as
    :meth:`pyg_recsys.data.InteractionGraph.norm_adj`) with
    :obj:`normalize=False` to skip the per-call normalisation.

    Args:
        normalize (bool, optional): If set to :obj:`False`, the input is used
            as given, without symmetric normalisation. (default: :obj:`True`)
        cached (bool, optional): If set to :obj:`True`, the normalised
            adjacency of the first call is cached and reused; only for
            transductive use on a fixed graph. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V}|, |\mathcal{V}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F)`
    """
    _cached: Optional[tuple]

    def __init__(self, normalize: bool = True, cached: bool = False,
                 **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.normalize = normalize
        self.cached = cached
        self._cached = None

    def reset_parameters(self):
        super().reset_parameters()
        self._cached = None

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        if x.dim() != 2:
            raise ValueError(f"'{self.__class__.__name__}' expects node "
                             f"features of shape [num_nodes, F], got "
                             f"{tuple(x.shape)}")
        if self.normalize:
            if self._cached is not None:
                edge_index, edge_weight = self._cached
            else:
                if isinstance(edge_index, SparseTensor):
                    edge_index = gcn_norm(edge_index, None,
                                          x.size(self.node_dim),
                                          add_self_loops=False,
                                          flow=self.flow, dtype=x.dtype)
                else:
                    edge_index, edge_weight = gcn_norm(
                        edge_index, edge_weight, x.size(self.node_dim),
                        add_self_loops=False, flow=self.flow, dtype=x.dtype)
                if self.cached:
                    self._cached = (edge_index, edge_weight)

        # propagate_type: (x: Tensor, edge_weight: OptTensor)
        return self.propagate(edge_index, x=x, edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        if self.aggr != 'add':
            raise ValueError(f"'{self.__class__.__name__}' supports only "
                             f"aggr='add' on sparse input, got '{self.aggr}'")
        return spmm(adj_t, x)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(normalize={self.normalize}, '
                f'cached={self.cached})')
