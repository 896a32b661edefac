r"""The interface shared by the embedding recommenders of the package."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.nn.loss import bpr_loss, l2_reg_rows


class EmbeddingRecommender(torch.nn.Module):
    r"""Base of recommenders that score a user-item pair by the dot product
    of a final user embedding and a final item embedding.

    Subclasses implement :meth:`embeddings` (the final tables, given the
    graph's normalised adjacency, which models without propagation ignore)
    and keep their layer-0 table in :obj:`self.embedding` with users at rows
    :obj:`0..U-1` and items at rows :obj:`U..U+I-1`.
    """
    num_users: int
    num_items: int
    embedding: torch.nn.Embedding

    def __init__(self, num_users: int, num_items: int, embedding_dim: int,
                 init_std: Optional[float] = 0.1):
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f"{self.__class__.__name__}: needs users and "
                             f"items, got num_users={num_users}, "
                             f"num_items={num_items}")
        self.num_users = num_users
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.init_std = init_std
        self.embedding = torch.nn.Embedding(num_users + num_items,
                                            embedding_dim)

    def reset_parameters(self):
        r"""Normal initialisation with :obj:`init_std` (the LightGCN code's
        0.1), or Xavier-uniform as PyG does when :obj:`init_std` is
        :obj:`None`."""
        if self.init_std is None:
            torch.nn.init.xavier_uniform_(self.embedding.weight)
        else:
            torch.nn.init.normal_(self.embedding.weight, std=self.init_std)

    def embeddings(self, adj=None) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def node_embeddings(self, adj=None) -> Tensor:
        r"""The final table of all nodes, users first, shape
        :obj:`[U + I, d]` (models that compute it in one piece override this
        to avoid the copy)."""
        return torch.cat(self.embeddings(adj), dim=0)

    def _check_batch(self, users: Tensor, pos: Tensor, neg: Tensor) -> None:
        if users.shape != pos.shape or users.size(0) != neg.size(0):
            raise ValueError(f"{self.__class__.__name__}: users {tuple(users.shape)}, "
                             f"positives {tuple(pos.shape)} and negatives "
                             f"{tuple(neg.shape)} must have the same length")

    def recommendation_loss(self, adj, users: Tensor, pos: Tensor,
                            neg: Tensor, lambda_reg: float = 1e-4,
                            reg_scaling: str = 'lightgcn',
                            hard_negatives: bool = False
                            ) -> Tuple[Tensor, dict]:
        r"""BPR loss of the triples :obj:`(users, pos, neg)` plus L2
        regularisation of their ego embeddings in the named scaling (see
        :mod:`pyg_recsys.nn.loss`). Returns the total and its parts.

        With :obj:`hard_negatives=True`, :obj:`neg` of shape :obj:`[B, M]`
        holds :math:`M` candidates per triple and only the one the current
        model scores highest for the user is used (dynamic negative
        sampling, Zhang et al., SIGIR 2013); the choice uses the same final
        embeddings as the loss and passes no gradient.
        """
        self._check_batch(users, pos, neg)
        final = self.node_embeddings(adj)
        if hard_negatives:
            neg = self.hardest_negatives(final, users, neg)
        loss, reg = self.bpr_and_reg(final, users, pos, neg, lambda_reg,
                                     reg_scaling)
        return loss + reg, {'bpr': float(loss.detach()),
                            'reg': float(reg.detach())}

    def bpr_and_reg(self, final: Tensor, users: Tensor, pos: Tensor,
                    neg: Tensor, lambda_reg: float, reg_scaling: str
                    ) -> Tuple[Tensor, Tensor]:
        r"""The BPR loss of the triples on the final node table
        :obj:`final` and the L2 penalty of their ego rows, as two tensors."""
        # One gather from the final table, cut with split (its backward
        # concatenates; slicing zero-fills a [3B, d] gradient per slice), and
        # the ego penalty from per-row counts without a gather (measured on
        # Yelp2018 at batch 32768: a step's backward 47 -> 26 ms).
        node_index = torch.cat([users, pos + self.num_users,
                                neg.reshape(-1) + self.num_users])
        u, p, n = final.index_select(0, node_index).split(
            [users.numel(), users.numel(), neg.numel()])
        n = n.view(*neg.shape, -1)
        pos_score = (u * p).sum(-1)
        neg_score = (u.unsqueeze(-2) * n).sum(-1) if neg.dim() == 2 \
            else (u * n).sum(-1)
        loss = bpr_loss(pos_score, neg_score)
        reg = loss.new_zeros(())
        if lambda_reg:
            reg = l2_reg_rows(self.embedding.weight, node_index,
                              users.numel(), lambda_reg, reg_scaling)
        return loss, reg

    @torch.no_grad()
    def hardest_negatives(self, final: Tensor, users: Tensor,
                          candidates: Tensor) -> Tensor:
        r"""Per row of :obj:`candidates` (item ids, shape :obj:`[B, M]`),
        the item with the highest score for :obj:`users` under the final
        node table :obj:`final` (users first); ties go to the first
        candidate. Returns shape :obj:`[B]`."""
        if candidates.dim() != 2:
            raise ValueError(f"{self.__class__.__name__}: hard negatives need "
                             f"candidates of shape [B, M], got "
                             f"{tuple(candidates.shape)}")
        final = final.detach()
        u = final.index_select(0, users)
        c = final.index_select(0, candidates.reshape(-1) + self.num_users)
        score = torch.bmm(c.view(*candidates.shape, -1).to(u.dtype),
                          u.unsqueeze(-1)).squeeze(-1)
        return candidates.gather(1, score.argmax(1, keepdim=True)).view(-1)

    @torch.no_grad()
    def scores(self, users: Tensor, adj=None) -> Tensor:
        r"""Scores of every item for :obj:`users`, shape :obj:`[B, I]`."""
        user_emb, item_emb = self.embeddings(adj)
        return user_emb[users] @ item_emb.t()

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, adj=None,
                  exclude: Optional[Tuple[Tensor, Tensor]] = None,
                  batch_size: int = 1024) -> Tensor:
        r"""The top-:obj:`k` items of every user in :obj:`users`, best first,
        ties broken by lower item id, never recommending an item of
        :obj:`exclude` (the users' training items, as the :obj:`(rowptr,
        col)` of :meth:`pyg_recsys.data.InteractionGraph.csr`).

        Returns:
            torch.Tensor: item ids, shape :obj:`[len(users), k]`; :obj:`-1`
            pads rows of users with fewer than :obj:`k` candidate items.
        """
        from pyg_recsys.metrics import topk
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        if users.numel() and (int(users.min()) < 0
                              or int(users.max()) >= self.num_users):
            raise ValueError(f"{self.__class__.__name__}.recommend: user ids "
                             f"must lie in [0, {self.num_users})")
        if k <= 0:
            raise ValueError(f"recommend: k must be positive, got {k}")
        user_emb, item_emb = self.embeddings(adj)
        return topk(user_emb, item_emb, users, k, exclude=exclude,
                    batch_size=batch_size)[1]
