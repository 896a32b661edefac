import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor
from torch.nn import ModuleList, Parameter
from torch_geometric.typing import Adj, OptTensor

from pyg_recsys.nn.conv import IntentConv
from pyg_recsys.nn.conv.intent_conv import IntentConvOutput
from pyg_recsys.nn.loss import info_nce
from pyg_recsys.nn.models.base import EmbeddingRecommender


class DCCF(EmbeddingRecommender):
    r"""The DCCF model from the `"Disentangled Contrastive Collaborative
    Filtering" <https://arxiv.org/abs/2305.02759>`_ paper, as its official
    code (HKUDS/DCCF) implements it.

    .. math::
        \mathbf{e} = \sum_{l=0}^{L} \mathbf{E}^{(l)}, \qquad
        \mathbf{E}^{(l+1)} = \mathbf{E}^{(l)} + \mathbf{Z}^{(l)} +
        \mathbf{R}^{(l)} + \mathbf{H}^{\beta(l)} + \mathbf{H}^{\gamma(l)},

    with the views of :class:`~pyg_recsys.nn.conv.IntentConv` and the
    intent prototypes :math:`\mathbf{C}_u, \mathbf{C}_v \in \mathbb{R}^{d
    \times K}` shared by all layers. Users are nodes :obj:`0..U-1`, items
    :obj:`U..U+I-1`. The training loss of a batch of triples
    :math:`(u, i, j)` (see :meth:`training_loss`) is

    .. math::
        \mathcal{L} = \mathcal{L}_{\mathrm{BPR}} + \lambda_1 \sum_b
        (\|\mathbf{e}^{(0)}_u\|^2 + \|\mathbf{e}^{(0)}_i\|^2 +
        \|\mathbf{e}^{(0)}_j\|^2) + \lambda_2 (\|\mathbf{C}_u\|_F^2 +
        \|\mathbf{C}_v\|_F^2) + \lambda_3 \sum_{l=0}^{L-1}
        \sum_{\mathbf{V} \in \{\mathbf{R}, \mathbf{H}^{\beta},
        \mathbf{H}^{\gamma}\}} \left(
        \mathrm{NCE}(\mathbf{Z}^{(l)}_{\mathcal{B}_u},
        \mathbf{V}^{(l)}_{\mathcal{B}_u}) +
        \mathrm{NCE}(\mathbf{Z}^{(l)}_{\mathcal{B}_i},
        \mathbf{V}^{(l)}_{\mathcal{B}_i}) \right),

    where :math:`\mathcal{B}_u` are the distinct users and
    :math:`\mathcal{B}_i` the distinct positive items of the batch and
    :math:`\mathrm{NCE}` is :func:`pyg_recsys.nn.loss.info_nce` (cosine,
    temperature :math:`\tau`, in-batch negatives from the other view,
    averaged over the distinct nodes). As in the official code's
    :obj:`cal_ssl_loss`, the :math:`6L` terms are summed, not averaged, over
    layers, views and the user / item sides; :math:`\lambda_1` regularises
    the batch's ego rows in the :obj:`'dccf'` scaling of
    :mod:`pyg_recsys.nn.loss`.

    Deviations from the official code: InfoNCE is computed stably as a
    log-sum-exp over row blocks of the logits, without the two
    :math:`10^{-8}` guards inside its logarithm (see
    :func:`~pyg_recsys.nn.loss.info_nce`); the embeddings live in one table,
    initialised per node type exactly as the code's two tables are
    (Xavier-normal of :obj:`[U, d]` and of :obj:`[I, d]`).

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): The embedding size :math:`d`.
            (default: :obj:`32`)
        num_layers (int, optional): The number of layers :math:`L`.
            (default: :obj:`2`)
        num_intents (int, optional): The number of intents :math:`K`.
            (default: :obj:`128`)
        ssl_weight (float, optional): :math:`\lambda_3`, the weight of the
            contrastive loss. (default: :obj:`0.1`)
        temperature (float, optional): The InfoNCE temperature :math:`\tau`.
            (default: :obj:`1.0`)
        proto_reg (float, optional): :math:`\lambda_2`, the L2 strength on
            the prototypes. (default: :obj:`5e-3`)
    """
    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 32, num_layers: int = 2,
                 num_intents: int = 128, ssl_weight: float = 0.1,
                 temperature: float = 1.0, proto_reg: float = 5e-3):
        super().__init__(num_users, num_items, embedding_dim, init_std=None)
        if num_layers < 0:
            raise ValueError(f"DCCF: num_layers must be >= 0, got "
                             f"{num_layers}")
        if num_intents <= 0:
            raise ValueError(f"DCCF: num_intents must be positive, got "
                             f"{num_intents}")
        if not temperature > 0:
            raise ValueError(f"DCCF: temperature must be positive, got "
                             f"{temperature}")
        if ssl_weight < 0 or proto_reg < 0:
            raise ValueError(f"DCCF: ssl_weight and proto_reg must be >= 0, "
                             f"got {ssl_weight} and {proto_reg}")
        self.num_layers = num_layers
        self.num_intents = num_intents
        self.ssl_weight = ssl_weight
        self.temperature = temperature
        self.proto_reg = proto_reg
        self.user_intents = Parameter(torch.empty(embedding_dim, num_intents))
        self.item_intents = Parameter(torch.empty(embedding_dim, num_intents))
        self.convs = ModuleList([IntentConv() for _ in range(num_layers)])
        self.reset_parameters()

    def reset_parameters(self):
        r"""Xavier-normal initialisation of the user table :obj:`[U, d]`,
        the item table :obj:`[I, d]` (each with its own fan) and of both
        prototype matrices :obj:`[d, K]`, as in the DCCF code."""
        w, d = self.embedding.weight, self.embedding_dim
        with torch.no_grad():
            for part in (w[:self.num_users], w[self.num_users:]):
                part.normal_(0.0, math.sqrt(2.0 / (part.size(0) + d)))
        torch.nn.init.xavier_normal_(self.user_intents)
        torch.nn.init.xavier_normal_(self.item_intents)
        for conv in self.convs:
            conv.reset_parameters()

    def propagate_layers(self, edge_index: Adj, edge_weight: OptTensor = None
                         ) -> Tuple[Tensor, List[IntentConvOutput]]:
        r"""The final embeddings of all nodes, shape :obj:`[U + I, d]`, and
        the views of every layer.

        A sparse :obj:`edge_index` is taken as already normalised (as
        :meth:`~pyg_recsys.data.InteractionGraph.norm_adj` returns); an
        :obj:`edge_index` tensor is normalised in every layer.
        """
        if edge_index is None:
            raise ValueError("DCCF needs the graph's adjacency (or "
                             "edge_index) to compute its embeddings")
        x = self.embedding.weight
        out = x
        layers = []
        for conv in self.convs:
            res = conv(x, edge_index, self.num_users, self.user_intents,
                       self.item_intents, edge_weight)
            layers.append(res)
            x = res.out
            out = out + x
        return out, layers

    def get_embedding(self, edge_index: Adj,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""Final embeddings of all nodes, shape :obj:`[U + I, d]`."""
        return self.propagate_layers(edge_index, edge_weight)[0]

    @torch.no_grad()
    def intent_weights(self, adj) -> List[Tuple[Tensor, Tensor]]:
        r"""The intent distributions of every layer's input, detached: for
        :math:`l = 0..L-1`, the pair :math:`(\mathrm{softmax}(
        \mathbf{E}^{(l)}_{\mathcal{U}} \mathbf{C}_u),
        \mathrm{softmax}(\mathbf{E}^{(l)}_{\mathcal{I}} \mathbf{C}_v))` of
        shapes :obj:`[U, K]` and :obj:`[I, K]`."""
        _, layers = self.propagate_layers(adj)
        inputs = [self.embedding.weight] + [res.out for res in layers[:-1]]
        return [IntentConv.intent_weights(x, self.num_users,
                                          self.user_intents,
                                          self.item_intents)
                for x in inputs]

    def contrastive_loss(self, layers: List[IntentConvOutput], users: Tensor,
                         items: Tensor) -> Tensor:
        r"""The unweighted contrastive term: :math:`\sum_l \sum_{\mathbf{V}}`
        of :func:`~pyg_recsys.nn.loss.info_nce` between
        :math:`\mathbf{Z}^{(l)}` and :math:`\mathbf{V}^{(l)} \in
        \{\mathbf{R}^{(l)}, \mathbf{H}^{\beta(l)}, \mathbf{H}^{\gamma(l)}\}`
        on the distinct :obj:`users`, plus the same on the distinct
        :obj:`items` (both node ids)."""
        loss = self.embedding.weight.new_zeros(())
        sides = (torch.unique(users), torch.unique(items))
        for res in layers:
            for nodes in sides:  # the three views share the anchor: one call
                views = torch.stack([v.index_select(0, nodes) for v in (
                    res.intent, res.graph_aug, res.intent_aug)])
                loss = loss + info_nce(res.graph.index_select(0, nodes),
                                       views, self.temperature)
        return loss

    def propagate_for_loss(self, edge_index: Adj):
        return self.propagate_layers(edge_index)

    def extra_losses(self, layers: List[IntentConvOutput], users: Tensor,
                     pos: Tensor) -> Dict[str, Tensor]:
        r"""The prototype L2 (:obj:`'proto'`, :obj:`proto_reg` times the
        squared norms of both prototype matrices) and the contrastive term
        (:obj:`'ssl'`, :obj:`ssl_weight` times :meth:`contrastive_loss` on the
        batch's users and positive items), as added by
        :meth:`~pyg_recsys.nn.models.EmbeddingRecommender.training_loss`."""
        zero = self.embedding.weight.new_zeros(())
        proto = ssl = zero
        if self.proto_reg:
            proto = self.proto_reg * (self.user_intents.pow(2).sum() +
                                      self.item_intents.pow(2).sum())
        if self.ssl_weight and layers:
            ssl = self.ssl_weight * self.contrastive_loss(layers, users, pos)
        return {'proto': proto, 'ssl': ssl}

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_users}, '
                f'{self.num_items}, embedding_dim={self.embedding_dim}, '
                f'num_layers={self.num_layers}, '
                f'num_intents={self.num_intents})')
