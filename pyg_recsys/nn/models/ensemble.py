from typing import Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor


class ScoreEnsemble(torch.nn.Module):
    r"""Fuses trained embedding recommenders (LightGCN, SimpleX, MF, ...) by
    a weighted sum of their standardised scores,

    .. math::
        \hat{y}_{ui} = \sum_m w_m \frac{s_m(u, i) - \mu_m(u)}{\sigma_m(u)},

    where :math:`s_m(u, i) = \mathbf{u}_m^{\top} \mathbf{i}_m` is model
    :math:`m`'s score and :math:`\mu_m(u)`, :math:`\sigma_m(u)` are the mean
    and standard deviation of user :math:`u`'s scores over all items, so
    that models whose scores live on different scales (cosines, unbounded
    dot products) count by their weights only.

    Up to the per-user constant :math:`\sum_m w_m \mu_m(u) / \sigma_m(u)`,
    which does not change a user's ranking, :math:`\hat{y}_{ui}` is the dot
    product of concatenations,
    :math:`[\, w_1 \mathbf{u}_1 / \sigma_1(u) \,\Vert\, \cdots \,]^{\top}
    [\, \mathbf{i}_1 \,\Vert\, \cdots \,]`, and :meth:`get_embedding`
    returns them: the exact full-ranking evaluation, :meth:`recommend` of a
    Trainer and every dot-product consumer work on the ensemble unchanged.

    The members are used as they are (trained beforehand, each with its own
    recipe); the ensemble has no parameters of its own and is not trained.

    Args:
        models (sequence of torch.nn.Module): Trained recommenders over the
            same users and items, each with :meth:`get_embedding` returning
            :obj:`[num_users + num_items, d_m]` user and item vectors whose
            dot products are its scores.
        weights (sequence of float, optional): :math:`w_m`, positive.
            (default: equal weights)
    """
    def __init__(self, models: Sequence[torch.nn.Module],
                 weights: Optional[Sequence[float]] = None):
        super().__init__()
        models = list(models)
        if len(models) < 2:
            raise ValueError(f"ScoreEnsemble: needs at least two models, got "
                             f"{len(models)}")
        for m in models:
            if not hasattr(m, 'get_embedding'):
                raise ValueError(f"ScoreEnsemble: {type(m).__name__} does not "
                                 f"score by embeddings (no get_embedding)")
        sizes = {(int(m.num_users), int(m.num_items)) for m in models}
        if len(sizes) != 1:
            raise ValueError(f"ScoreEnsemble: the models must share users and "
                             f"items, got (num_users, num_items) "
                             f"{sorted(sizes)}")
        weights = [1.0] * len(models) if weights is None else \
            [float(w) for w in weights]
        if len(weights) != len(models):
            raise ValueError(f"ScoreEnsemble: {len(models)} models but "
                             f"{len(weights)} weights")
        if not all(w > 0 and w != float('inf') for w in weights):
            raise ValueError(f"ScoreEnsemble: weights must be positive and "
                             f"finite, got {weights}")
        self.models = torch.nn.ModuleList(models)
        self.weights = weights
        self.num_users, self.num_items = sizes.pop()

    @torch.no_grad()
    def get_embedding(self, edge_index: Adj,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""The scaled user vectors and the item vectors of all members,
        concatenated: :obj:`[num_users + num_items, sum_m d_m]`. Every member
        gets the same graph."""
        U = self.num_users
        users, items = [], []
        for model, w in zip(self.models, self.weights):
            out = model.get_embedding(edge_index) if edge_weight is None \
                else model.get_embedding(edge_index, edge_weight)
            u, i = out[:U], out[U:]
            centred = i - i.mean(0)
            cov = centred.t() @ centred / i.size(0)
            # sigma_m(u)^2 = u^T Cov(i) u: the variance of u's scores.
            sd = ((u @ cov) * u).sum(-1).clamp_min(1e-24).sqrt()
            users.append(u * (w / sd).unsqueeze(-1))
            items.append(i)
        return torch.cat([torch.cat(users, -1), torch.cat(items, -1)])

    def forward(self, edge_index: Adj, edge_weight: OptTensor = None
                ) -> Tensor:
        return self.get_embedding(edge_index, edge_weight)

    def __repr__(self) -> str:
        names = ', '.join(type(m).__name__ for m in self.models)
        return f'{type(self).__name__}([{names}], weights={self.weights})'
