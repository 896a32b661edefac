from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch.nn import ModuleList
from torch_geometric.typing import Adj, OptTensor

from pyg_recsys.nn.conv import SheafConv
from pyg_recsys.nn.models.base import EmbeddingRecommender

READOUTS = ('cat', 'mean')


class Sheaf4Rec(EmbeddingRecommender):
    r"""The Sheaf4Rec model from the `"Sheaf Neural Networks for
    Graph-based Recommender Systems" <https://arxiv.org/abs/2304.09097>`_
    paper.

    .. math::
        \mathbf{e} = \mathbf{x}^{(0)} \,\Vert\, \mathbf{x}^{(1)} \,\Vert\,
        \cdots \,\Vert\, \mathbf{x}^{(L)}, \qquad
        \mathbf{x}^{(l+1)} = \mathbf{x}^{(l)} - \tilde{\mathbf{L}}^{(l)}
        \left(\mathbf{x}^{(l)} \mathbf{W}^{(l)\top} +
        \mathbf{b}^{(l)}\right),

    with the learned normalised sheaf Laplacian :math:`\tilde{\mathbf{L}}^{(l)}`
    of every :class:`~pyg_recsys.nn.conv.SheafConv` layer (maps computed from
    that layer's input), on the bipartite graph with users at nodes
    :obj:`0..U-1` and items at :obj:`U..U+I-1`; a user-item pair is scored by
    the dot product of their final embeddings and trained with BPR (see
    :meth:`EmbeddingRecommender.training_loss`; the released code
    regularises the ego rows with :math:`\lambda = 10^{-4}` in the
    :obj:`'lightgcn'` scaling).

    :obj:`readout='cat'` concatenates the :math:`L + 1` layers (final size
    :math:`(L + 1) d`); :obj:`readout='mean'` averages them (size :math:`d`),
    which is what the released code (``RecSysGNN`` with ``model='Sheaf'``)
    does. The released code has scalar maps (:obj:`stalk_dim=1`),
    :math:`d = 64`, :math:`L = 10` and normal initialisation with standard
    deviation 0.1 of the embeddings; the defaults here follow it except for
    the readout.

    The graph is given as :obj:`edge_index` with both directions of every
    interaction (as :attr:`pyg_recsys.data.InteractionGraph.edge_index`) or
    as a sparse adjacency whose pattern is used (e.g.
    :meth:`~pyg_recsys.data.InteractionGraph.norm_adj`; its normalised values
    play no role).

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): The embedding size :math:`d`, a
            multiple of :obj:`stalk_dim`. (default: :obj:`64`)
        num_layers (int, optional): The number of layers :math:`L`.
            (default: :obj:`10`)
        stalk_dim (int, optional): The stalk dimension :math:`s` of the
            sheaf. (default: :obj:`1`)
        support (str, optional): :obj:`'diag'` or :obj:`'general'`
            restriction maps for :math:`s > 1`. (default: :obj:`'diag'`)
        readout (str, optional): :obj:`'cat'` or :obj:`'mean'` of the
            layers. (default: :obj:`'cat'`)
        init_std (float, optional): Standard deviation of the normal
            initialisation of the embeddings; :obj:`None` uses
            Xavier-uniform. (default: :obj:`0.1`)
        cached (bool, optional): If set to :obj:`True`, every layer keeps the
            graph structure of the last graph object it saw (see
            :class:`~pyg_recsys.nn.conv.SheafConv`). (default: :obj:`True`)
    """
    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, num_layers: int = 10,
                 stalk_dim: int = 1, support: str = 'diag',
                 readout: str = 'cat', init_std: Optional[float] = 0.1,
                 cached: bool = True):
        super().__init__(num_users, num_items, embedding_dim, init_std)
        name = self.__class__.__name__
        if num_layers < 0:
            raise ValueError(f"{name}: num_layers must be >= 0, got "
                             f"{num_layers}")
        if stalk_dim <= 0 or embedding_dim % stalk_dim != 0:
            raise ValueError(f"{name}: embedding_dim={embedding_dim} must be "
                             f"a multiple of stalk_dim={stalk_dim}")
        if readout not in READOUTS:
            raise ValueError(f"{name}: readout must be one of {READOUTS}, "
                             f"got '{readout}'")
        self.num_layers = num_layers
        self.stalk_dim = stalk_dim
        self.support = support
        self.readout = readout
        self.convs = ModuleList([
            SheafConv(embedding_dim, stalk_dim, support, cached=cached)
            for _ in range(num_layers)
        ])
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    @property
    def output_dim(self) -> int:
        r"""The size of the final embeddings."""
        if self.readout == 'cat':
            return (self.num_layers + 1) * self.embedding_dim
        return self.embedding_dim

    def propagate_layers(self, edge_index: Adj) -> List[Tensor]:
        r"""The embeddings :math:`\mathbf{x}^{(0)}, \ldots,
        \mathbf{x}^{(L)}` of all nodes, each of shape :obj:`[U + I, d]`."""
        if edge_index is None:
            raise ValueError(f"{self.__class__.__name__} needs the graph's "
                             f"adjacency (or edge_index) to compute its "
                             f"embeddings")
        x = self.embedding.weight
        xs = [x]
        for conv in self.convs:
            x = conv(x, edge_index)
            xs.append(x)
        return xs

    def get_embedding(self, edge_index: Adj,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""Final embeddings of all nodes, shape :obj:`[U + I,
        output_dim]` (:obj:`edge_weight` is not supported)."""
        if edge_weight is not None:
            raise ValueError(f"{self.__class__.__name__} does not take edge "
                             f"weights")
        xs = self.propagate_layers(edge_index)
        if self.readout == 'cat':
            return torch.cat(xs, dim=-1)
        return torch.stack(xs, dim=0).mean(dim=0)

    @torch.no_grad()
    def restriction_maps(self, adj) -> List[Tuple[Tensor, Tensor]]:
        r"""The learned maps of every layer, detached: for :math:`l =
        0..L-1`, the directed edges :obj:`[2, E]` (sorted by source, then
        target) and their maps :math:`\mathbf{F}_{a \trianglelefteq e}`
        (shape :obj:`[E]`, :obj:`[E, s]` or :obj:`[E, s, s]`) computed from
        the layer's input."""
        xs = self.propagate_layers(adj)
        return [conv.maps(x, adj) for conv, x in zip(self.convs, xs)]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_users}, '
                f'{self.num_items}, embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers}, stalk_dim={self.stalk_dim}, '
                f'support={self.support!r}, readout={self.readout!r})')
