from typing import NamedTuple, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse

from pyg_recsys.ops import spmm, to_csr
from pyg_recsys.ops.spmm import sddmm


class IntentConvOutput(NamedTuple):
    r"""The views computed by one :class:`IntentConv` layer, each of shape
    :obj:`[N, F]`.

    Attributes:
        out (torch.Tensor): The next layer's input :math:`\mathbf{E}^{(l+1)}`.
        graph (torch.Tensor): The graph view :math:`\mathbf{Z}^{(l)}`.
        intent (torch.Tensor): The intent view :math:`\mathbf{R}^{(l)}`.
        graph_aug (torch.Tensor): The view :math:`\mathbf{H}^{\beta(l)}`
            propagated along the graph-view mask.
        intent_aug (torch.Tensor): The view :math:`\mathbf{H}^{\gamma(l)}`
            propagated along the intent-view mask.
    """
    out: Tensor
    graph: Tensor
    intent: Tensor
    graph_aug: Tensor
    intent_aug: Tensor


class IntentConv(MessagePassing):
    r"""One layer of disentangled intent-aware propagation with adaptive
    augmentation, from the `"Disentangled Contrastive Collaborative
    Filtering" <https://arxiv.org/abs/2305.02759>`_ paper (DCCF).

    On the bipartite graph with users at nodes :obj:`0..U-1` and items at
    :obj:`U..U+I-1`, with layer input :math:`\mathbf{E}` and intent
    prototypes :math:`\mathbf{C}_u, \mathbf{C}_v \in \mathbb{R}^{F \times K}`:

    .. math::
        \mathbf{Z} &= \hat{\mathbf{A}} \mathbf{E}, \qquad
        \mathbf{R}_{\mathcal{U}} = \mathrm{softmax}(\mathbf{E}_{\mathcal{U}}
        \mathbf{C}_u) \mathbf{C}_u^{\top}, \quad
        \mathbf{R}_{\mathcal{I}} = \mathrm{softmax}(\mathbf{E}_{\mathcal{I}}
        \mathbf{C}_v) \mathbf{C}_v^{\top},

        \alpha^{\mathbf{X}}_{i,j} &= \tfrac{1}{2}\left(
        \cos(\mathbf{x}_i, \mathbf{x}_j) + 1\right), \qquad
        \bar{\mathcal{G}}^{\mathbf{X}}_{i,j} =
        \frac{\alpha^{\mathbf{X}}_{i,j}}
        {\sum_{k \in \mathcal{N}(i)} \alpha^{\mathbf{X}}_{i,k}}
        \quad \text{for } j \in \mathcal{N}(i),

        \mathbf{H}^{\beta} &= \bar{\mathcal{G}}^{\mathbf{Z}} \mathbf{E},
        \qquad \mathbf{H}^{\gamma} = \bar{\mathcal{G}}^{\mathbf{R}}
        \mathbf{E}, \qquad
        \mathbf{E}^{\prime} = \mathbf{E} + \mathbf{Z} + \mathbf{R} +
        \mathbf{H}^{\beta} + \mathbf{H}^{\gamma},

    where :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2} \mathbf{A}
    \mathbf{D}^{-1/2}` (no self-loops) and the softmax runs over the
    :math:`K` intents. The masks :math:`\bar{\mathcal{G}}` are computed from
    this layer's views :math:`\mathbf{Z}, \mathbf{R}` but applied to its input
    :math:`\mathbf{E}`, live on the stored entries of the adjacency (its
    sparsity pattern; the normalised values are not used) and are
    row-normalised (:math:`\mathbf{D}^{-1}`, not symmetric), with gradients
    flowing through the masks and their normalisation. This follows the
    official code (HKUDS/DCCF); a node whose mask values sum to zero gets a
    zero row, as there.

    The prototypes are arguments rather than parameters of the layer since
    DCCF shares them across layers (:class:`~pyg_recsys.nn.models.DCCF` owns
    them). The layer itself has no parameters.

    The sparse products run on :func:`pyg_recsys.ops.spmm`, the masked ones
    with the mask as the stored values (their gradient is an SDDMM). When the
    sparse input is marked symmetric (see
    :func:`pyg_recsys.ops.mark_symmetric`; as
    :meth:`pyg_recsys.data.InteractionGraph.norm_adj` is), its pattern is
    taken as symmetric, so is the unnormalised mask, and the product is
    computed as :math:`\mathbf{D}^{-1} (\mathbf{A} \odot \alpha) \mathbf{E}`
    with no transposed copy in backward.

    Args:
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)` (normalised here like
          :class:`~pyg_recsys.nn.conv.LightConv` does) or a sparse adjacency
          :math:`(|\mathcal{V}|, |\mathcal{V}|)` (taken as already
          normalised),
          prototypes :math:`(F, K)` twice,
          edge weights :math:`(|\mathcal{E}|)` *(optional, edge indices only;
          they enter* :math:`\hat{\mathbf{A}}` *, not the masks)*
        - **output:** an :class:`IntentConvOutput` of five node feature
          matrices :math:`(|\mathcal{V}|, F)`
    """
    def __init__(self, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)

    def reset_parameters(self):
        super().reset_parameters()

    def _check(self, x: Tensor, num_users: int, user_intents: Tensor,
               item_intents: Tensor) -> None:
        name = self.__class__.__name__
        if x.dim() != 2:
            raise ValueError(f"'{name}' expects node features of shape "
                             f"[num_nodes, F], got {tuple(x.shape)}")
        if not 0 <= num_users <= x.size(0):
            raise ValueError(f"'{name}': num_users={num_users} is out of "
                             f"range for {x.size(0)} nodes")
        for what, c in (('user_intents', user_intents),
                        ('item_intents', item_intents)):
            if c.dim() != 2 or c.size(0) != x.size(1):
                raise ValueError(f"'{name}': {what} must have shape [F, K] "
                                 f"with F={x.size(1)}, got {tuple(c.shape)}")

    def forward(self, x: Tensor, edge_index: Adj, num_users: int,
                user_intents: Tensor, item_intents: Tensor,
                edge_weight: OptTensor = None) -> IntentConvOutput:
        r"""Runs the layer.

        Args:
            x (torch.Tensor): The layer input :math:`\mathbf{E}`, users first.
            edge_index (torch.Tensor or sparse): Edge indices, or a
                normalised sparse adjacency :obj:`adj_t` (rows are targets).
            num_users (int): The number of user nodes :math:`U`.
            user_intents (torch.Tensor): :math:`\mathbf{C}_u`, shape
                :obj:`[F, K]`.
            item_intents (torch.Tensor): :math:`\mathbf{C}_v`, shape
                :obj:`[F, K]`.
            edge_weight (torch.Tensor, optional): Edge weights of an
                :obj:`edge_index` tensor.
        """
        name = self.__class__.__name__
        self._check(x, num_users, user_intents, item_intents)
        num_nodes = x.size(self.node_dim)
        csr = None
        if is_sparse(edge_index):
            if edge_weight is not None:
                raise ValueError(f"'{name}': 'edge_weight' is only accepted "
                                 f"with an edge_index tensor; a sparse "
                                 f"adjacency carries its values")
            csr = to_csr(edge_index)
            if csr.num_rows != num_nodes or csr.num_cols != num_nodes:
                raise ValueError(f"'{name}': the adjacency is "
                                 f"{csr.num_rows}x{csr.num_cols} but there "
                                 f"are {num_nodes} nodes")
            row, col = csr.row(), csr.col.to(torch.int64)
        else:
            if edge_index.dim() != 2 or edge_index.size(0) != 2:
                raise ValueError(f"'{name}': edge_index must have shape "
                                 f"[2, num_edges], got "
                                 f"{tuple(edge_index.shape)}")
            edge_index, edge_weight = gcn_norm(
                edge_index, edge_weight, num_nodes, add_self_loops=False,
                flow=self.flow, dtype=x.dtype)
            # The aggregating node i is the 'row' of the matrix product.
            i, j = (1, 0) if self.flow == 'source_to_target' else (0, 1)
            row, col = edge_index[i], edge_index[j]

        # propagate_type: (x: Tensor, edge_weight: OptTensor)
        z = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        user_w, item_w = self.intent_weights(x, num_users, user_intents,
                                             item_intents)
        r = torch.cat([user_w @ user_intents.t(), item_w @ item_intents.t()])
        h_beta = self._masked(x, z, edge_index, csr, row, col)
        h_gamma = self._masked(x, r, edge_index, csr, row, col)
        out = x + z + r + h_beta + h_gamma
        return IntentConvOutput(out, z, r, h_beta, h_gamma)

    @staticmethod
    def intent_weights(x: Tensor, num_users: int, user_intents: Tensor,
                       item_intents: Tensor) -> Tuple[Tensor, Tensor]:
        r"""The intent distributions :math:`\mathrm{softmax}(\mathbf{E}
        \mathbf{C})` of the users (shape :obj:`[U, K]`) and of the items
        (shape :obj:`[I, K]`)."""
        return (torch.softmax(x[:num_users] @ user_intents, dim=-1),
                torch.softmax(x[num_users:] @ item_intents, dim=-1))

    def _masked(self, x: Tensor, h: Tensor, edge_index: Adj, csr,
                row: Tensor, col: Tensor) -> Tensor:
        r""":math:`\mathbf{D}^{-1} (\mathbf{A} \odot \alpha^{\mathbf{H}})
        \mathbf{X}` over the stored entries :obj:`(row, col)`."""
        h = F.normalize(h, p=2.0, dim=-1)  # rows once; eps as the DCCF code
        if csr is not None:  # no [nnz, F] intermediate, forward or backward
            cos = sddmm(edge_index, h, h)
        else:
            cos = (h.index_select(0, row) * h.index_select(0, col)).sum(-1)
        alpha = (cos + 1.0) / 2.0
        row_sum = alpha.new_zeros(x.size(0)).index_add(0, row, alpha)
        # 1 / row_sum, 0 for empty rows, with finite gradients (and NaN kept).
        empty = row_sum == 0
        inv = torch.where(empty, 0.0,
                          1.0 / torch.where(empty, 1.0, row_sum))
        if csr is None:
            agg = self.propagate(edge_index, x=x, edge_weight=alpha)
        else:
            # The mask replaces the stored values; its gradient (an SDDMM)
            # reaches alpha directly. alpha is symmetric on a symmetric
            # pattern, so an adjacency marked symmetric stays valid.
            agg = spmm(edge_index, x, value=alpha)
        return inv.view(-1, 1) * agg

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        if self.aggr != 'add':
            raise ValueError(f"'{self.__class__.__name__}' supports only "
                             f"aggr='add' on sparse input, got '{self.aggr}'")
        return spmm(adj_t, x)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
