from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor

from pyg_recsys.nn.loss import constraint_bce_loss, item_item_constraint_loss
from pyg_recsys.nn.models.base import EmbeddingRecommender

# Bound on the stored entries of one block of the item-item product (the
# row sums bound each row's entries), so that Gowalla's ~60 M co-occurrence
# pairs are never held at once.
_BLOCK_ENTRIES = 1 << 23


def constraint_betas(degree: Tensor, kind: str) -> Tensor:
    r"""UltraGCN's degree factors of :math:`\beta_{u,i} = \frac{1}{d_u}
    \sqrt{\frac{d_u + 1}{d_i + 1}}`: :math:`\sqrt{d + 1} / d` for the
    :obj:`'row'` side (users, or the item whose neighbours are weighed) and
    :math:`1 / \sqrt{d + 1}` for the :obj:`'col'` side; a row of degree 0
    gets 0 (UltraGCN's code divides by zero there, for nodes it never
    trains on)."""
    degree = degree.to(torch.float64)
    if kind == 'row':
        return torch.where(degree > 0, (degree + 1).sqrt() /
                           degree.clamp(min=1), 0.0)
    if kind == 'col':
        return (degree + 1).rsqrt()
    raise ValueError(f"constraint_betas: kind must be 'row' or 'col', got "
                     f"'{kind}'")


def item_item_neighbors(users: Tensor, items: Tensor, num_users: int,
                        num_items: int, k: int = 10,
                        exclude_self: bool = False
                        ) -> Tuple[Tensor, Tensor]:
    r"""The :math:`K` neighbours of every item in UltraGCN's item-item
    graph and their weights.

    With :math:`\mathbf{R}` the binary user-item matrix of the pairs
    :obj:`(users, items)` (duplicates count once), :math:`\mathbf{G} =
    \mathbf{R}^\top \mathbf{R}` (co-occurrence counts; its diagonal, the
    item degrees, is kept as in UltraGCN's code unless :obj:`exclude_self`,
    its :obj:`ii_diagonal_zero`) and :math:`g_i = \sum_j G_{ij}`, the weight of :math:`j` for :math:`i`
    is

    .. math::
        \omega_{ij} = \frac{G_{ij}}{g_i} \sqrt{\frac{g_i + 1}{g_j + 1}},

    and each item keeps the :math:`K` largest. The product is formed
    sparsely, in blocks of rows (never :math:`I \times I` dense). Items
    with fewer than :math:`K` co-occurring items are padded with weight 0
    (and their own id), which adds nothing to
    :func:`~pyg_recsys.nn.loss.item_item_constraint_loss`.

    Returns:
        (torch.Tensor, torch.Tensor): neighbour item ids :obj:`[I, K]`
        (long) and weights :obj:`[I, K]` (float), each row by decreasing
        weight.
    """
    if k <= 0:
        raise ValueError(f"item_item_neighbors: k must be positive, got {k}")
    users, items = users.long().view(-1), items.long().view(-1)
    if users.numel() != items.numel():
        raise ValueError("item_item_neighbors: users and items must have the "
                         "same length")
    if users.numel() and (int(users.min()) < 0 or
                          int(users.max()) >= num_users or
                          int(items.min()) < 0 or
                          int(items.max()) >= num_items):
        raise ValueError(f"item_item_neighbors: ids out of range for "
                         f"{num_users} users and {num_items} items")
    key = torch.unique(users * num_items + items)
    users, items = key // num_items, key % num_items
    ones = torch.ones(key.numel(), dtype=torch.float64)
    user_degree = torch.bincount(users, minlength=num_users).double()
    # g_i = sum_j G_ij = sum over the users of i of their degrees.
    g = torch.zeros(num_items, dtype=torch.float64).index_add_(
        0, items, user_degree[users])
    bounds = torch.cumsum(g, 0)  # entries of the rows, for the blocks
    if exclude_self:  # G_ii = d_i leaves the row sums, as in the code
        g = g - torch.bincount(items, minlength=num_items).double()
    row_beta = constraint_betas(g, 'row')
    col_beta = constraint_betas(g, 'col')
    R = torch.sparse_coo_tensor(torch.stack([users, items]), ones,
                                (num_users, num_items)).to_sparse_csr()
    order = torch.argsort(items, stable=True)
    Rt_rowptr = torch.zeros(num_items + 1, dtype=torch.long)
    Rt_rowptr[1:] = torch.bincount(items, minlength=num_items).cumsum(0)
    Rt_col = users[order]

    index = torch.arange(num_items).view(-1, 1).repeat(1, k)
    weight = torch.zeros(num_items, k, dtype=torch.float32)
    start = 0
    while start < num_items:
        # The largest block whose row sums (entry bounds) stay in budget.
        limit = (bounds[start - 1] if start else 0.0) + _BLOCK_ENTRIES
        end = int(torch.searchsorted(bounds, limit, right=True))
        end = min(max(end, start + 1), num_items)
        lo, hi = int(Rt_rowptr[start]), int(Rt_rowptr[end])
        block = torch.sparse_csr_tensor(
            Rt_rowptr[start:end + 1] - lo, Rt_col[lo:hi],
            torch.ones(hi - lo, dtype=torch.float64),
            (end - start, num_users))
        G = torch.sparse.mm(block, R)
        rowptr = G.crow_indices()
        col = G.col_indices()
        val = G.values()
        row = torch.repeat_interleave(torch.arange(end - start),
                                      rowptr[1:] - rowptr[:-1])
        if exclude_self:
            keep = col != row + start
            row, col, val = row[keep], col[keep], val[keep]
        w = val * row_beta[row + start] * col_beta[col]
        # By row, then by decreasing weight (ties: smaller item id first).
        perm = torch.argsort(-w, stable=True)
        perm = perm[torch.argsort(row[perm], stable=True)]
        row, col, w = row[perm], col[perm], w[perm]
        first = torch.zeros(end - start + 1, dtype=torch.long)
        first[1:] = torch.bincount(row, minlength=end - start).cumsum(0)
        rank = torch.arange(row.numel()) - first[row]
        keep = rank < k
        index[row[keep] + start, rank[keep]] = col[keep]
        weight[row[keep] + start, rank[keep]] = w[keep].float()
        start = end
    return index, weight


class UltraGCN(EmbeddingRecommender):
    r"""The UltraGCN model from the `"UltraGCN: Ultra Simplification of
    Graph Convolutional Networks for Recommendation"
    <https://arxiv.org/abs/2110.15114>`_ paper, as its official code
    (reczoo/RecZoo, :obj:`matching/gnn/UltraGCN`) trains it: matrix
    factorisation (:math:`\hat{y}_{ui} = \mathbf{e}_u^\top \mathbf{e}_i`, no
    propagation at any time) whose loss stands in for infinitely many graph
    convolutions,

    .. math::
        \mathcal{L} = \mathcal{L}_O + \lambda \mathcal{L}_I +
        \frac{\gamma}{2} \|\mathbf{E}\|^2,

    where :math:`\mathcal{L}_O` is
    :func:`~pyg_recsys.nn.loss.constraint_bce_loss` with
    :math:`\omega^+ = w_1 + w_2 \beta_{u,i}` on the positives and
    :math:`\omega^- = w_3 + w_4 \beta_{u,j}` on the negatives,
    :math:`\beta_{u,i} = \frac{1}{d_u} \sqrt{\frac{d_u + 1}{d_i + 1}}`
    from the training degrees (the user-item constraint), and
    :math:`\mathcal{L}_I` is
    :func:`~pyg_recsys.nn.loss.item_item_constraint_loss` over the
    :math:`K` neighbours of each positive item in the item-item graph
    (:func:`item_item_neighbors`). Both are sums over the batch, and the
    norm penalty covers the whole table every step, as in the code;
    :math:`\gamma` is the Trainer's :obj:`lambda_reg` (its
    :obj:`reg_scaling` does not apply).

    The degrees and the item-item graph come from the graph given to
    :meth:`set_graph`, or else from the first graph given to
    :meth:`training_loss` (the Trainer's training adjacency); the graph is
    not used otherwise. Negatives of shape :obj:`[B, M]` (UltraGCN's, drawn
    per positive) and :obj:`[1, M]` (shared by the batch, see
    :class:`~pyg_recsys.train.TrainConfig`'s :obj:`shared_negatives`) are
    both taken.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): The embedding size. (default:
            :obj:`64`)
        num_neighbors (int, optional): :math:`K`, item-item neighbours per
            item. (default: :obj:`10`)
        w1, w2, w3, w4 (float, optional): The weights of :math:`\omega^+`
            and :math:`\omega^-`. (defaults: :obj:`1e-6, 1, 1e-6, 1`, the
            Gowalla configuration)
        negative_weight (float, optional): The weight of the negative term
            of :math:`\mathcal{L}_O`. (default: :obj:`300`)
        ii_weight (float, optional): :math:`\lambda`, the weight of
            :math:`\mathcal{L}_I`. (default: :obj:`5e-4`)
        init_std (float, optional): Standard deviation of the normal
            initialisation. (default: :obj:`1e-4`)
    """
    dns = False

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, num_neighbors: int = 10,
                 w1: float = 1e-6, w2: float = 1.0, w3: float = 1e-6,
                 w4: float = 1.0, negative_weight: float = 300.0,
                 ii_weight: float = 5e-4, init_std: Optional[float] = 1e-4):
        super().__init__(num_users, num_items, embedding_dim, init_std)
        if num_neighbors <= 0:
            raise ValueError(f"UltraGCN: num_neighbors must be positive, got "
                             f"{num_neighbors}")
        for name, value in (('w1', w1), ('w2', w2), ('w3', w3), ('w4', w4),
                            ('negative_weight', negative_weight),
                            ('ii_weight', ii_weight)):
            if not value >= 0:
                raise ValueError(f"UltraGCN: {name} must be >= 0, got "
                                 f"{value}")
        self.num_neighbors = int(num_neighbors)
        self.w1, self.w2, self.w3, self.w4 = map(float, (w1, w2, w3, w4))
        self.negative_weight = float(negative_weight)
        self.ii_weight = float(ii_weight)
        for name in ('user_beta', 'item_beta', 'ii_index', 'ii_omega'):
            self.register_buffer(name, None, persistent=False)
        self.reset_parameters()

    def set_graph(self, edge_index: Adj) -> 'UltraGCN':
        r"""Computes the degree factors and the item-item neighbours from
        the user-item pairs of :obj:`edge_index` (node ids, or a sparse
        adjacency), the training graph."""
        return self.set_interactions(*self.interactions(edge_index))

    def set_interactions(self, users: Tensor, items: Tensor) -> 'UltraGCN':
        r"""As :meth:`set_graph`, from the training pairs :obj:`(users,
        items)` in user ids and item ids (e.g.
        :attr:`pyg_recsys.data.InteractionGraph.train`)."""
        users = torch.as_tensor(users).long().view(-1)
        items = torch.as_tensor(items).long().view(-1)
        if users.numel() == 0:
            raise ValueError("UltraGCN: the graph has no user-item edges")
        dev = self.embedding.weight.device
        users, items = users.cpu(), items.cpu()
        U, I = self.num_users, self.num_items
        key = torch.unique(users * I + items)  # each pair once
        users, items = key // I, key % I
        self.user_beta = constraint_betas(
            torch.bincount(users, minlength=U), 'row').float().to(dev)
        self.item_beta = constraint_betas(
            torch.bincount(items, minlength=I), 'col').float().to(dev)
        index, omega = item_item_neighbors(users, items, U, I,
                                           self.num_neighbors)
        self.ii_index, self.ii_omega = index.to(dev), omega.to(dev)
        return self

    def get_embedding(self, edge_index: Adj = None,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""The embedding table itself, :obj:`[U + I, d]`."""
        return self.embedding.weight

    def propagate_for_loss(self, edge_index: Adj):
        if self.ii_index is None:
            self.set_graph(edge_index)
        return self.embedding.weight, self.embedding.weight

    def extra_losses(self, table: Tensor, users: Tensor, pos: Tensor
                     ) -> Dict[str, Tensor]:
        r"""The item-item constraint :math:`\lambda \mathcal{L}_I` of the
        batch's positive pairs (:obj:`'ii'`)."""
        if not self.ii_weight:
            return {'ii': table.new_zeros(())}
        U = self.num_users
        ii = self.ii_index.index_select(0, pos - U)  # [B, K] item ids
        u = table.index_select(0, users)
        h = table.index_select(0, ii.reshape(-1) + U).view(*ii.shape, -1)
        score = torch.bmm(h, u.unsqueeze(-1)).squeeze(-1)
        return {'ii': self.ii_weight * item_item_constraint_loss(
            score, self.ii_omega.index_select(0, pos - U))}

    def bpr_and_reg(self, final: Tensor, users: Tensor, pos: Tensor,
                    neg: Tensor, lambda_reg: float, reg_scaling: str,
                    n_id: OptTensor = None, loss: str = 'bpr',
                    loss_kwargs: Optional[Dict[str, Any]] = None
                    ) -> Tuple[Tensor, Tensor]:
        r""":math:`\mathcal{L}_O` and the norm penalty :math:`\frac{\gamma}{2} \|\mathbf{E}\|^2` (:math:`\gamma` =
        :obj:`lambda_reg`)."""
        if loss != 'bpr' or loss_kwargs:
            raise ValueError(f"UltraGCN trains with its own constraint loss, "
                             f"not loss='{loss}'")
        if self.ii_index is None:
            raise ValueError("UltraGCN: call set_graph(edge_index) first (the "
                             "training graph gives the constraint weights)")
        U = self.num_users
        shared = neg.dim() == 2 and neg.size(0) == 1 and users.numel() != 1
        node_index = torch.cat([users, pos, neg.reshape(-1)])
        u, p, n = final.index_select(0, node_index).split(
            [users.numel(), users.numel(), neg.numel()])
        pos_score = (u * p).sum(-1)
        beta_u = self.user_beta.index_select(0, users)
        pos_w = self.w1 + self.w2 * beta_u * self.item_beta.index_select(
            0, pos - U)
        neg_beta = self.item_beta.index_select(0, neg.reshape(-1) - U)
        if shared:
            neg_score = u @ n.t()
            neg_w = self.w3 + self.w4 * beta_u.view(-1, 1) * \
                neg_beta.view(1, -1)
        elif neg.dim() == 2:
            neg_score = torch.bmm(n.view(*neg.shape, -1),
                                  u.unsqueeze(-1)).squeeze(-1)
            neg_w = self.w3 + self.w4 * beta_u.view(-1, 1) * \
                neg_beta.view(neg.shape)
        else:
            neg_score = (u * n).sum(-1)
            neg_w = self.w3 + self.w4 * beta_u * neg_beta
        main = constraint_bce_loss(pos_score, neg_score, pos_w, neg_w,
                                   self.negative_weight)
        reg = main.new_zeros(())
        if lambda_reg:
            reg = 0.5 * lambda_reg * self.embedding.weight.pow(2).sum()
        return main, reg

    def _extra_repr(self) -> str:
        return f', num_neighbors={self.num_neighbors}'
