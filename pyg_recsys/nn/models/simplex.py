from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse

from pyg_recsys.nn.conv.behavior_conv import BehaviorConv
from pyg_recsys.nn.models.base import EmbeddingRecommender

SIMILARITIES = ('cosine', 'dot')


class SimpleX(EmbeddingRecommender):
    r"""The SimpleX model from the `"SimpleX: A Simple and Strong Baseline
    for Collaborative Filtering" <https://arxiv.org/abs/2109.12613>`_ paper:
    matrix factorisation whose user vector mixes the user's own embedding
    with an aggregate of the embeddings of the items the user interacted
    with in training (:class:`~pyg_recsys.nn.conv.BehaviorConv`),

    .. math::
        \mathbf{u} = g\, \mathbf{e}_u + (1 - g)\, \mathbf{W}_v
        \mathrm{agg}_{i \in \mathcal{N}(u)} \mathbf{h}_i, \qquad
        \hat{y}_{ui} = \cos(\mathbf{u}, \mathbf{e}_i),

    trained with the cosine contrastive loss over many negatives
    (:obj:`TrainConfig(loss='ccl', num_negatives=..., margin=...,
    negative_weight=...)`, see
    :func:`~pyg_recsys.nn.loss.cosine_contrastive_loss`). The history
    vectors :math:`\mathbf{h}_i` are the item embeddings themselves, or a
    separate table (:obj:`share_history=False`, as SimpleX's Gowalla
    configuration has it). Dropout is applied to the normalised user vector
    in training, as in SimpleX's code.

    With :obj:`bias=True` (SimpleX's :obj:`enable_bias`, set in its ML-1M
    configuration) a pair scores

    .. math::
        \hat{y}_{ui} = \mathrm{dropout}\big([\,\mathbf{u} \,\Vert\, 1\,]
        \big)^{\top} [\,\mathbf{e}_i \,\Vert\, b_i\,] + b_u + b,

    the item bias :math:`b_i` on a constant feature of the user vector
    (dropped out with it in training, as in the code) and the user and global
    biases added after. The vectors carry the biases as two extra columns,
    :math:`[\mathbf{u} \Vert 1 \Vert b_u + b]` and :math:`[\mathbf{e}_i
    \Vert b_i \Vert 1]`, so that every dot-product consumer (the losses,
    the evaluator) sees the score; :math:`b_u + b` is constant per user and
    does not change a ranking.

    The graph given to :meth:`get_embedding` (the Trainer's normalised
    training adjacency, or any :obj:`edge_index` of user-item edges in node
    ids) supplies the histories; its weights are ignored. Only the rows a
    training batch needs are computed (:meth:`embedding_rows`).

    Not implemented: SimpleX's :obj:`'self_attention'` aggregator; the attention's softmax runs
    over the user's items only (see :class:`BehaviorConv`).

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): The size :math:`d`. (default: :obj:`64`)
        aggregator (str, optional): :obj:`'mean'` or :obj:`'user_attention'`.
            (default: :obj:`'mean'`)
        gamma (float, optional): :math:`g`, the weight of the user's own
            embedding; :obj:`1` is MF. (default: :obj:`0.5`)
        dropout (float, optional): Dropout on the user vector in training.
            (default: :obj:`0.1`)
        similarity (str, optional): :obj:`'cosine'` or :obj:`'dot'`.
            (default: :obj:`'cosine'`)
        share_history (bool, optional): Whether the history vectors are the
            item embeddings. (default: :obj:`True`)
        init_std (float, optional): Standard deviation of the normal
            initialisation of the embeddings and biases (SimpleX's 1e-4).
            (default: :obj:`1e-4`)
        bias (bool, optional): Whether pairs get the user, item and global
            score biases. (default: :obj:`False`)
    """
    dns = False

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, aggregator: str = 'mean',
                 gamma: float = 0.5, dropout: float = 0.1,
                 similarity: str = 'cosine', share_history: bool = True,
                 init_std: Optional[float] = 1e-4, bias: bool = False):
        super().__init__(num_users, num_items, embedding_dim, init_std)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"SimpleX: gamma must lie in [0, 1], got {gamma}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"SimpleX: dropout must lie in [0, 1), got "
                             f"{dropout}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"SimpleX: similarity must be one of "
                             f"{SIMILARITIES}, got '{similarity}'")
        self.aggregator = aggregator
        self.gamma = float(gamma)
        self.dropout = float(dropout)
        self.similarity = similarity
        self.share_history = bool(share_history)
        self.history = None if share_history else \
            torch.nn.Embedding(num_items, embedding_dim)
        self.conv = BehaviorConv(embedding_dim, aggregator)
        self.bias = bool(bias)
        if self.bias:
            self.user_bias = torch.nn.Embedding(num_users, 1)
            self.item_bias = torch.nn.Embedding(num_items, 1)
            self.global_bias = torch.nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        if self.history is not None:
            torch.nn.init.normal_(self.history.weight,
                                  std=self.init_std or 1e-4)
        if self.bias:
            for table in (self.user_bias, self.item_bias):
                torch.nn.init.normal_(table.weight, std=self.init_std or 1e-4)
            torch.nn.init.zeros_(self.global_bias)
        self.conv.reset_parameters()

    # ------------------------------------------------------------------
    def _histories(self, edge_index: Adj, users: Tensor
                   ) -> Tuple[Tensor, Tensor]:
        r"""The training items (item ids) of :obj:`users` (user ids) and, per
        item, the position of its user in :obj:`users`."""
        U = self.num_users
        if edge_index is None:
            raise ValueError("SimpleX needs the interaction graph "
                             "(edge_index or a sparse adjacency) for the "
                             "users' histories")
        if is_sparse(edge_index) and edge_index.layout == torch.sparse_csr:
            rowptr = edge_index.crow_indices()
            col = edge_index.col_indices()
        else:
            rowptr, col = _csr_of(self, edge_index)
        start = rowptr.index_select(0, users)
        count = rowptr.index_select(0, users + 1) - start
        owner = torch.repeat_interleave(
            torch.arange(users.numel(), device=users.device), count)
        offset = torch.arange(owner.numel(), device=users.device) - \
            torch.repeat_interleave(count.cumsum(0) - count, count)
        items = col.index_select(0, start.index_select(0, owner) + offset)
        keep = items >= U  # user rows of the user-item graph hold items
        return items[keep] - U, owner[keep]

    def user_vectors(self, edge_index: Adj, users: Tensor) -> Tensor:
        r"""The user vectors :math:`\mathbf{u}` of :obj:`users` (user ids),
        normalised under cosine similarity, dropout applied in training.

        Each distinct user's history is aggregated once, however often the
        user occurs in :obj:`users` (a batch drawn per interaction repeats
        heavy users: on ML-1M this cut a step at batch 1024 several-fold);
        dropout is drawn per occurrence."""
        uniq, inverse = torch.unique(users, return_inverse=True)
        e_u = self.embedding.weight.index_select(0, uniq)
        out = e_u
        if self.gamma < 1.0:
            items, owner = self._histories(edge_index, uniq)
            # Shared histories index the whole table (items offset by U):
            # slicing it first would cost a table-sized gradient copy.
            if self.history is None:
                table, items = self.embedding.weight, items + self.num_users
            else:
                table = self.history.weight
            # The histories come grouped by user: a CSR [users, items].
            rowptr = torch.zeros(uniq.numel() + 1, dtype=torch.long,
                                 device=uniq.device)
            rowptr[1:] = torch.bincount(owner,
                                        minlength=uniq.numel()).cumsum(0)
            adj_t = torch.sparse_csr_tensor(
                rowptr, items, torch.ones(items.numel(), dtype=table.dtype,
                                          device=items.device),
                (uniq.numel(), table.size(0)), check_invariants=False)
            agg = self.conv((table, e_u), adj_t)
            out = self.gamma * e_u + (1.0 - self.gamma) * agg
        if self.similarity == 'cosine':
            out = F.normalize(out, dim=-1)
        if self.bias:  # the constant feature of the item bias
            out = torch.cat([out, out.new_ones(out.size(0), 1)], dim=-1)
        out = F.dropout(out.index_select(0, inverse), self.dropout,
                        self.training)
        if self.bias:
            b = self.user_bias.weight.index_select(0, users) + \
                self.global_bias
            out = torch.cat([out, b], dim=-1)
        return out

    def item_vectors(self, items: Tensor) -> Tensor:
        r"""The item vectors of :obj:`items` (item ids)."""
        out = self.embedding.weight.index_select(0, items + self.num_users)
        if self.similarity == 'cosine':
            out = F.normalize(out, dim=-1)
        if self.bias:
            out = torch.cat([out, self.item_bias.weight.index_select(0, items),
                             out.new_ones(out.size(0), 1)], dim=-1)
        return out

    def get_embedding(self, edge_index: Adj,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""User vectors and item vectors of all nodes, :obj:`[U + I, d]`
        (:obj:`[U + I, d + 2]` with :obj:`bias`; the graph's edge weights are
        not used)."""
        dev = self.embedding.weight.device
        users = torch.arange(self.num_users, device=dev)
        items = torch.arange(self.num_items, device=dev)
        return torch.cat([self.user_vectors(edge_index, users),
                          self.item_vectors(items)])

    def propagate_for_loss(self, edge_index: Adj):
        return edge_index, None  # rows are computed per batch

    def embedding_rows(self, final, node_index: Tensor) -> Tensor:
        r"""Rows :obj:`node_index` (node ids) of :meth:`get_embedding`'s
        table, computing only those; :obj:`final` is the graph."""
        is_user = node_index < self.num_users
        users = node_index[is_user]
        items = node_index[~is_user] - self.num_users
        u = self.user_vectors(final, users)
        i = self.item_vectors(items)
        out = u.new_empty(node_index.numel(), u.size(-1))
        return out.index_put((is_user.nonzero().view(-1), ), u) \
            .index_put(((~is_user).nonzero().view(-1), ), i)

    def _extra_repr(self) -> str:
        return (f", aggregator='{self.aggregator}', gamma={self.gamma}"
                + (', bias=True' if self.bias else ''))


def _csr_of(model: SimpleX, edge_index: Tensor) -> Tuple[Tensor, Tensor]:
    r"""CSR row pointer and columns (node ids) of the user rows of a graph
    of node ids (both directions may be present)."""
    row, item = model.interactions(edge_index)
    rowptr = torch.zeros(model.num_users + 1, dtype=torch.long,
                         device=row.device)
    rowptr[1:] = torch.bincount(row, minlength=model.num_users).cumsum(0)
    return rowptr, item + model.num_users
