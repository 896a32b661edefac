from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn import ModuleList
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse, to_edge_index

from pyg_recsys.nn.conv import LightConv
from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.ops import light_propagate


class LightGCN(EmbeddingRecommender):
    r"""The LightGCN model from the `"LightGCN: Simplifying and Powering
    Graph Convolution Network for Recommendation"
    <https://arxiv.org/abs/2002.02126>`_ paper.

    .. math::
        \mathbf{e} = \sum_{l=0}^{L} \alpha_l \mathbf{e}^{(l)}, \qquad
        \mathbf{e}^{(l+1)} = \hat{\mathbf{A}} \mathbf{e}^{(l)},

    on the bipartite graph with users at nodes :obj:`0..U-1` and items at
    :obj:`U..U+I-1`. Given a pre-normalised sparse adjacency (as from
    :meth:`pyg_recsys.data.InteractionGraph.norm_adj`) the layers run as one
    :func:`pyg_recsys.ops.light_propagate` call; given :obj:`edge_index`,
    through :class:`~pyg_recsys.nn.conv.LightConv` layers exactly as PyG's
    :class:`~torch_geometric.nn.models.LightGCN` does.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): The embedding size. (default: :obj:`64`)
        num_layers (int, optional): The number of propagation layers.
            (default: :obj:`3`)
        alpha (float or sequence or torch.Tensor, optional): Layer weights
            :math:`\alpha_0..\alpha_L`; a scalar applies to every layer.
            (default: :obj:`1 / (L + 1)`)
        init_std (float, optional): Standard deviation of the normal
            initialisation of the embeddings (the LightGCN code uses 0.1);
            :obj:`None` uses Xavier-uniform as PyG does. (default: :obj:`0.1`)
        storage_dtype (torch.dtype, optional): :obj:`torch.bfloat16` keeps
            the gathered layers in bfloat16 during training steps (see
            :func:`pyg_recsys.ops.light_propagate`); evaluation always
            propagates in float32. (default: :obj:`None`)
    """
    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, num_layers: int = 3,
                 alpha: Union[float, Sequence[float], Tensor, None] = None,
                 init_std: Optional[float] = 0.1,
                 storage_dtype: Optional[torch.dtype] = None):
        super().__init__(num_users, num_items, embedding_dim, init_std)
        if isinstance(storage_dtype, str):  # from a JSON recipe / checkpoint
            storage_dtype = getattr(torch, storage_dtype)
        self.storage_dtype = storage_dtype
        if num_layers < 0:
            raise ValueError(f"LightGCN: num_layers must be >= 0, got "
                             f"{num_layers}")
        self.num_layers = num_layers
        if alpha is None:
            alpha = 1.0 / (num_layers + 1)
        alpha = torch.as_tensor(alpha, dtype=torch.float)
        if alpha.dim() == 0:
            alpha = alpha.repeat(num_layers + 1)
        if alpha.numel() != num_layers + 1:
            raise ValueError(f"LightGCN: expected {num_layers + 1} layer "
                             f"weights, got {alpha.numel()}")
        self.register_buffer('alpha', alpha)
        self.convs = ModuleList([LightConv() for _ in range(num_layers)])
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def get_embedding(self, edge_index: Adj,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""Final embeddings of all nodes, shape :obj:`[U + I, d]`.

        A sparse :obj:`edge_index` is taken as already normalised (as
        :meth:`~pyg_recsys.data.InteractionGraph.norm_adj` returns); an
        :obj:`edge_index` tensor is normalised like :class:`LGConv` does.
        """
        x = self.embedding.weight
        if is_sparse(edge_index):
            return light_propagate(
                edge_index, x, self.num_layers, self.alpha.tolist(),
                storage_dtype=self.storage_dtype if self.training else None)
        out = x * self.alpha[0]
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            out = out + x * self.alpha[i + 1]
        return out

    def embeddings(self, adj=None) -> Tuple[Tensor, Tensor]:
        out = self.node_embeddings(adj)
        return out[:self.num_users], out[self.num_users:]

    def node_embeddings(self, adj=None) -> Tensor:
        if adj is None:
            raise ValueError("LightGCN needs the graph's adjacency (or "
                             "edge_index) to compute its embeddings")
        return self.get_embedding(adj)

    def forward(self, edge_index: Adj, edge_label_index: OptTensor = None,
                edge_weight: OptTensor = None) -> Tensor:
        r"""Scores of the node pairs in :obj:`edge_label_index` (homogeneous
        ids; default: the edges of :obj:`edge_index`)."""
        if edge_label_index is None:
            edge_label_index = (to_edge_index(edge_index)[0]
                                if is_sparse(edge_index) else edge_index)
        out = self.get_embedding(edge_index, edge_weight)
        return (out[edge_label_index[0]] * out[edge_label_index[1]]).sum(-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_users}, '
                f'{self.num_items}, embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers})')
