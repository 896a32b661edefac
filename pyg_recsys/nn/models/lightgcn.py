from typing import Optional, Sequence, Union

import torch
from torch import Tensor
from torch.nn import ModuleList
from torch_geometric.typing import Adj, OptTensor

from pyg_recsys.nn.conv import LightConv
from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.ops import light_propagate
from pyg_recsys.ops.csr import is_marked_normalized


class LightGCN(EmbeddingRecommender):
    r"""The LightGCN model from the `"LightGCN: Simplifying and Powering
    Graph Convolution Network for Recommendation"
    <https://arxiv.org/abs/2002.02126>`_ paper.

    .. math::
        \mathbf{e} = \sum_{l=0}^{L} \alpha_l \mathbf{e}^{(l)}, \qquad
        \mathbf{e}^{(l+1)} = \hat{\mathbf{A}} \mathbf{e}^{(l)}.

    A drop-in replacement for :class:`torch_geometric.nn.models.LightGCN`:
    positional arguments mean what they mean there
    (:obj:`LightGCN(num_nodes, embedding_dim, num_layers, alpha)`), and
    :meth:`forward`, :meth:`predict_link`, :meth:`recommend`,
    :meth:`link_pred_loss` and :meth:`recommendation_loss` give PyG's results
    on the same weights. For recommendation on a bipartite graph, give the
    sizes as keywords, :obj:`LightGCN(num_users=U, num_items=I,
    embedding_dim=64)`: users are then nodes :obj:`0..U-1` and items
    :obj:`U..U+I-1`.

    Like PyG's model, every layer normalises the graph it is given
    (:obj:`edge_index` with optional :obj:`edge_weight`, or a sparse
    adjacency, exactly as :class:`~torch_geometric.nn.conv.LGConv`). An
    adjacency that is already normalised and marked so, as
    :meth:`pyg_recsys.data.InteractionGraph.norm_adj` returns it, runs all
    layers as one :func:`pyg_recsys.ops.light_propagate` call instead.

    Args:
        num_nodes (int, optional): The number of nodes; implied by
            :obj:`num_users + num_items` when those are given.
        embedding_dim (int, optional): The embedding size. (default: :obj:`64`)
        num_layers (int, optional): The number of propagation layers.
            (default: :obj:`3`)
        alpha (float or sequence or torch.Tensor, optional): Layer weights
            :math:`\alpha_0..\alpha_L`; a scalar applies to every layer.
            (default: :obj:`1 / (L + 1)`)
        num_users (int, optional): The number of users (keyword only).
        num_items (int, optional): The number of items (keyword only).
        init_std (float, optional): Standard deviation of the normal
            initialisation of the embeddings (the LightGCN code uses 0.1);
            :obj:`None` uses Xavier-uniform as PyG does. (default: :obj:`0.1`)
        storage_dtype (torch.dtype, optional): :obj:`torch.bfloat16` keeps
            the gathered layers in bfloat16 during training steps on a marked
            adjacency (see :func:`pyg_recsys.ops.light_propagate`);
            evaluation always propagates in float32. (default: :obj:`None`)
        **kwargs (optional): Arguments of the
            :class:`~pyg_recsys.nn.conv.LightConv` layers.
    """
    subgraphs = True

    def __init__(self, num_nodes: Optional[int] = None,
                 embedding_dim: int = 64, num_layers: int = 3,
                 alpha: Union[float, Sequence[float], Tensor, None] = None, *,
                 num_users: Optional[int] = None,
                 num_items: Optional[int] = None,
                 init_std: Optional[float] = 0.1,
                 storage_dtype: Optional[torch.dtype] = None, **kwargs):
        super().__init__(num_users, num_items, embedding_dim, init_std,
                         num_nodes=num_nodes)
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
        self.convs = ModuleList([LightConv(**kwargs)
                                 for _ in range(num_layers)])
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def get_embedding(self, edge_index: Adj, edge_weight: OptTensor = None,
                      n_id: OptTensor = None) -> Tensor:
        r"""The final embeddings of all nodes, shape :obj:`[N, d]`.

        With :obj:`n_id` (the global ids of a sampled subgraph's nodes, as
        :obj:`batch.n_id` of a PyG loader), :obj:`edge_index` is that
        subgraph in local indices and the result has one row per entry of
        :obj:`n_id`; :func:`pyg_recsys.data.sampled_adjacency` makes it the
        full graph's propagation estimated on the sample.
        """
        if edge_index is None:
            raise ValueError("LightGCN needs the graph (edge_index or a "
                             "sparse adjacency) to compute its embeddings")
        x = self.embedding.weight
        if n_id is not None:
            x = x.index_select(0, n_id.to(x.device))
        if is_marked_normalized(edge_index) and edge_weight is None:
            return light_propagate(
                edge_index, x, self.num_layers, self.alpha.tolist(),
                storage_dtype=self.storage_dtype if self.training else None)
        out = x * self.alpha[0]
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            out = out + x * self.alpha[i + 1]
        return out

    def __repr__(self) -> str:
        if self.num_users is None:  # as PyG prints it
            return (f'{self.__class__.__name__}({self.num_nodes}, '
                    f'{self.embedding_dim}, num_layers={self.num_layers})')
        return (f'{self.__class__.__name__}({self._size_repr()}, '
                f'embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers})')
