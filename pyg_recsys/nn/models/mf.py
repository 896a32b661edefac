from typing import Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.nn.models.base import EmbeddingRecommender


class MF(EmbeddingRecommender):
    r"""Matrix factorisation trained with BPR (BPR-MF), from the `"BPR:
    Bayesian Personalized Ranking from Implicit Feedback"
    <https://arxiv.org/abs/1205.2618>`_ paper: :math:`\hat{y}_{ui} =
    \mathbf{e}_u^\top \mathbf{e}_i`. Ignores the graph.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): The embedding size. (default: :obj:`64`)
        init_std (float, optional): Standard deviation of the normal
            initialisation. (default: :obj:`0.1`)
    """
    subgraphs = True

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, init_std: Optional[float] = 0.1):
        super().__init__(num_users, num_items, embedding_dim, init_std)
        self.reset_parameters()

    def get_embedding(self, edge_index=None, edge_weight=None,
                      n_id: Optional[Tensor] = None) -> Tensor:
        r"""The embedding table itself, shape :obj:`[U + I, d]` (the graph
        is not used), or its rows :obj:`n_id`."""
        if n_id is not None:
            return self.embedding.weight.index_select(0, n_id)
        return self.embedding.weight


class MostPopular(torch.nn.Module):
    r"""Recommends the items with the most training interactions to every
    user (the most-popular baseline). Has no parameters to train.

    Args:
        item_degree (torch.Tensor): Training interactions per item, shape
            :obj:`[I]` (:meth:`pyg_recsys.data.InteractionGraph.item_degree`).
        num_users (int): The number of users.
    """
    def __init__(self, item_degree: Tensor, num_users: int):
        super().__init__()
        self.num_users = int(num_users)
        self.num_items = int(item_degree.numel())
        self.register_buffer('popularity', item_degree.to(torch.float))

    @torch.no_grad()
    def scores(self, users: Tensor, adj=None) -> Tensor:
        return self.popularity.view(1, -1).expand(users.numel(), -1)

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, adj=None,
                  exclude: Optional[Tuple[Tensor, Tensor]] = None,
                  batch_size: int = 1024) -> Tensor:
        r"""See :meth:`EmbeddingRecommender.recommend`."""
        from pyg_recsys.metrics import topk_scores
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        if users.numel() and (int(users.min()) < 0
                              or int(users.max()) >= self.num_users):
            raise ValueError(f"{self.__class__.__name__}.recommend: user ids "
                             f"must lie in [0, {self.num_users})")
        return topk_scores(self.scores, self.num_users, self.num_items,
                           users, k, exclude=exclude,
                           batch_size=batch_size)[1]

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_items={self.num_items})'
