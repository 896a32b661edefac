r"""A click-sequence-aware CTR network in the style of C-3PO."""
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

SEQUENCE_KEYS = ('seq_click', 'seq_mask', 'seq_gap')
# The dense features of click_features, by key and width.
DENSE = {'time': 4, 'user': 4}


class ClickSequenceDNN(torch.nn.Module):
    r"""A pointwise click model in the style of C-3PO (Huang & Kao, "Click
    sequence-aware deeP neural network (DNN)-based Pop-uPs recOmmendation",
    Soft Computing 2019, arXiv 1803.00458). **A reconstruction**: the paper's
    data are private and its architecture is only outlined in the abstract
    (a DNN over the user's click/no-click sequence, the time of sending and
    a collaborative-filtering view of user and item); the inputs and layers
    here are this package's choice, each one's value measured by ablation
    (``benchmarks/compare_ctr.py``).

    Per impression, the input is the concatenation of

    * the user's last :math:`N` outcomes, their presence mask and their gaps
      (:func:`~pyg_recsys.data.impressions.click_features`), flattened
      (:obj:`use_sequence`);
    * hour and weekday on the circle, time since the user's last impression,
      the number of earlier impressions and the smoothed earlier click rate;
    * a learned item id embedding;
    * collaborative features (:obj:`use_cf`): frozen user and item vectors of
      a graph model trained only on events before the impressions' windows
      (e.g. this package's LightGCN), their dot product, and whether the
      user and the item occur in that history;

    and an MLP maps it, batch-normalised, to a click logit. With
    :obj:`hidden=()` the model is logistic regression on the same
    (normalised) features.

    Args:
        num_items (int): The number of items.
        history (int): :math:`N`, the outcomes read. (default: :obj:`10`)
        item_dim (int): Size of the item id embedding. (default: :obj:`16`)
        hidden (sequence of int): Hidden layer sizes. (default: :obj:`(128,
            64)`)
        dropout (float): Dropout after every hidden layer.
            (default: :obj:`0.2`)
        cf_user (torch.Tensor, optional): :obj:`[U, d]` user vectors of the
            CF model (rows of users absent from its history are zeroed).
        cf_item (torch.Tensor, optional): :obj:`[I, d]` item vectors.
        cf_user_known (torch.Tensor, optional): :obj:`[U]` bool, the users
            with history events (default: rows not all zero).
        cf_item_known (torch.Tensor, optional): :obj:`[I]` bool.
        use_sequence (bool): Read the outcome sequence. (default: :obj:`True`)
        use_cf (bool): Read the CF features (needs :obj:`cf_user`,
            :obj:`cf_item`). (default: :obj:`True`)
        dense (dict, optional): The dense features read, key to width.
            (default: :obj:`{'time': 4, 'user': 4}`, those of
            :func:`~pyg_recsys.data.impressions.click_features`)
        num_users (int): The number of users, for a user id embedding.
        user_dim (int): Its size; 0 (the default): none.
    """
    def __init__(self, num_items: int, history: int = 10, item_dim: int = 16,
                 hidden: Sequence[int] = (128, 64), dropout: float = 0.2,
                 cf_user: Optional[Tensor] = None,
                 cf_item: Optional[Tensor] = None,
                 cf_user_known: Optional[Tensor] = None,
                 cf_item_known: Optional[Tensor] = None,
                 use_sequence: bool = True, use_cf: bool = True,
                 dense: Optional[Dict[str, int]] = None, num_users: int = 0,
                 user_dim: int = 0):
        super().__init__()
        # The dense per-impression features read, by key and width.
        self.dense = dict(DENSE if dense is None else dense)
        if use_cf and (cf_user is None or cf_item is None):
            raise ValueError("ClickSequenceDNN: use_cf=True needs cf_user "
                             "and cf_item (or pass use_cf=False)")
        if not 0 <= dropout < 1:
            raise ValueError(f"ClickSequenceDNN: dropout must be in [0, 1), "
                             f"got {dropout}")
        self.num_items, self.history = num_items, history
        self.use_sequence, self.use_cf = use_sequence, use_cf
        self.item_embedding = torch.nn.Embedding(num_items, item_dim)
        self.user_embedding = (torch.nn.Embedding(num_users, user_dim)
                               if user_dim > 0 else None)
        width = sum(self.dense.values()) + item_dim + max(user_dim, 0)
        if use_sequence:
            width += 3 * history
        if use_cf:
            if cf_item.size(0) != num_items or \
                    cf_user.size(1) != cf_item.size(1):
                raise ValueError(f"ClickSequenceDNN: cf_item must be "
                                 f"[{num_items}, d] and cf_user [U, d], got "
                                 f"{list(cf_item.shape)} and "
                                 f"{list(cf_user.shape)}")
            if cf_user_known is None:
                cf_user_known = cf_user.abs().sum(1) > 0
            if cf_item_known is None:
                cf_item_known = cf_item.abs().sum(1) > 0
            self.register_buffer('cf_user', cf_user.detach().float() *
                                 cf_user_known.unsqueeze(1))
            self.register_buffer('cf_item', cf_item.detach().float() *
                                 cf_item_known.unsqueeze(1))
            self.register_buffer('cf_user_known', cf_user_known.float())
            self.register_buffer('cf_item_known', cf_item_known.float())
            width += 2 * cf_user.size(1) + 3
        # Inputs standardised per batch (the dense features differ in scale
        # by orders of magnitude: counts, gaps, rates, embeddings).
        layers = [torch.nn.BatchNorm1d(width)]
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU(),
                       torch.nn.Dropout(dropout)]
            width = size
        layers.append(torch.nn.Linear(width, 1))
        self.mlp = torch.nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self):
        torch.nn.init.normal_(self.item_embedding.weight, std=0.01)
        if self.user_embedding is not None:
            torch.nn.init.normal_(self.user_embedding.weight, std=0.01)
        for layer in self.mlp:
            if isinstance(layer, (torch.nn.Linear, torch.nn.BatchNorm1d)):
                layer.reset_parameters()

    def inputs(self, user: Tensor, item: Tensor,
               features: Dict[str, Tensor]) -> Tensor:
        r"""The concatenated input rows (see the class docstring)."""
        parts = [features[k] for k in self.dense]
        parts.append(self.item_embedding(item))
        if self.user_embedding is not None:
            parts.append(self.user_embedding(user))
        if self.use_sequence:
            parts += [features[k] for k in SEQUENCE_KEYS]
        if self.use_cf:
            cu, ci = self.cf_user[user], self.cf_item[item]
            parts += [cu, ci, (cu * ci).sum(-1, keepdim=True),
                      self.cf_user_known[user].unsqueeze(1),
                      self.cf_item_known[item].unsqueeze(1)]
        return torch.cat(parts, dim=-1)

    def forward(self, user: Tensor, item: Tensor,
                features: Dict[str, Tensor]) -> Tensor:
        r"""Click logits, shape :obj:`[n]`."""
        return self.mlp(self.inputs(user, item, features)).squeeze(-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_items}, '
                f'history={self.history}, use_sequence={self.use_sequence}, '
                f'use_cf={self.use_cf})')
