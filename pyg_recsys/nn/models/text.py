r"""Text-aware recommenders: they take encoded text vectors (from
:mod:`pyg_recsys.text`), never an encoder, so that a model stays small and
the expensive encoding is done and cached once.

* :class:`TextZeroShot`: user-profile to item-text cosine, no training;
* :class:`TextAlign`: EasyRec-style contrastive alignment of the text space
  with behaviour (a trainable adapter over frozen text vectors, InfoNCE
  between users and their items with in-batch negatives);
* :class:`TextFusion`: RecLM-style fusion, an item tower over text only
  (no item id embedding, so items absent from training get scores) and a
  user tower of id embedding and profile, in front of MF or LightGCN;
* :class:`TextRegularizedLightGCN`: LightGCN with an InfoNCE term that
  aligns its item embeddings with projected text vectors.

All are :class:`~pyg_recsys.nn.models.EmbeddingRecommender` s: the Trainer,
the evaluator and :meth:`recommend` drive them as any other model, with node
ids (users :obj:`0..U-1`, items :obj:`U..U+I-1`).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor

from pyg_recsys.nn.loss import info_nce
from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.nn.models.lightgcn import LightGCN
from pyg_recsys.ops import light_propagate

BACKBONES = ('mf', 'lightgcn')


def _text_table(name: str, where: str, x: Optional[Tensor], rows: int
                ) -> Optional[Tensor]:
    if x is None:
        return None
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        raise ValueError(f"{where}: '{name}' must be a float tensor, got "
                         f"{x.dtype}")
    if x.dim() != 2 or x.size(0) != rows:
        raise ValueError(f"{where}: '{name}' must have shape [{rows}, d], "
                         f"got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: '{name}' holds NaN or infinite values")
    return x.detach().float()


class _TextModel(EmbeddingRecommender):
    r"""Shared parts: the text tables are buffers (saved with the model)
    and the constructor arguments are not plain data, so checkpoints keep
    the state dict only (:attr:`init_kwargs` is :obj:`None`)."""

    @property
    def init_kwargs(self):
        return None

    def _user_item(self, users: Tensor, pos: Tensor) -> Tuple[Tensor, Tensor]:
        U = self.num_users
        if bool((users < 0).any()) or bool((users >= U).any()):
            raise ValueError(f"{self.__class__.__name__}: user ids outside "
                             f"[0, {U})")
        items = pos - U
        if bool((items < 0).any()) or bool((items >= self.num_items).any()):
            raise ValueError(f"{self.__class__.__name__}: item node ids "
                             f"outside [{U}, {U + self.num_items})")
        return users, items


class TextZeroShot(_TextModel):
    r"""Zero-shot text recommendation: the score of user :math:`u` and item
    :math:`i` is the cosine of the user's profile vector and the item's
    text vector, :math:`\hat{y}_{ui} = \cos(\mathbf{p}_u, \mathbf{t}_i)`.
    Nothing is trained; an item or user without text (a zero vector)
    scores 0.

    Args:
        user_text (torch.Tensor): Profile vectors, :obj:`[U, d]` (e.g. the
            encoded :func:`~pyg_recsys.text.user_profiles`, or
            :func:`~pyg_recsys.text.mean_of_items` of the item vectors).
        item_text (torch.Tensor): Item text vectors, :obj:`[I, d]`.
    """
    def __init__(self, user_text: Tensor, item_text: Tensor):
        name = self.__class__.__name__
        super().__init__(int(user_text.size(0)), int(item_text.size(0)))
        u = _text_table('user_text', name, user_text, self.num_users)
        i = _text_table('item_text', name, item_text, self.num_items)
        if u.size(1) != i.size(1):
            raise ValueError(f"{name}: user_text has {u.size(1)} columns but "
                             f"item_text has {i.size(1)}")
        self.register_buffer('user_text', F.normalize(u, dim=-1))
        self.register_buffer('item_text', F.normalize(i, dim=-1))
        self.embedding_dim = int(u.size(1))

    def get_embedding(self, edge_index: Adj = None,
                      edge_weight: OptTensor = None) -> Tensor:
        return torch.cat([self.user_text, self.item_text])


class TextAlign(_TextModel):
    r"""EasyRec-style alignment of text with behaviour (reconstruction:
    Ren & Huang's EasyRec tunes the language model itself; here a residual
    adapter is trained over frozen text vectors). An adapter
    :math:`g(\mathbf{x}) = \mathrm{norm}(\mathbf{x} + \mathbf{W}_2
    \,\mathrm{GELU}(\mathbf{W}_1 \mathbf{x}))`, with :math:`\mathbf{W}_2 = 0`
    at the start (so the untrained model is :class:`TextZeroShot`), maps
    user profiles and item texts into one space; training minimises
    InfoNCE between each user and their item with in-batch negatives at
    temperature :math:`\tau`
    (:func:`~pyg_recsys.nn.loss.info_nce`); the sampled BPR negatives are
    not used.

    The user side is either given profile vectors (:obj:`user_text`) or,
    with :obj:`history`, the mean text vector of the user's training items
    with the positive of each training pair left out (so that a profile
    never contains the item it must retrieve; a user with one training
    item then trains from an empty, zero profile).

    Args:
        item_text (torch.Tensor): Item text vectors, :obj:`[I, d]`.
        user_text (torch.Tensor, optional): Profile vectors, :obj:`[U, d]`.
        history (tuple, optional): The training CSR :obj:`(rowptr, col)`
            over users (e.g. :obj:`graph.csr('train')`), instead of
            :obj:`user_text`.
        hidden_dim (int, optional): The adapter's width.
            (default: :obj:`256`)
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.05`)
        shared (bool, optional): One adapter for both sides.
            (default: :obj:`True`)
    """
    def __init__(self, item_text: Tensor, user_text: OptTensor = None,
                 history: Optional[Tuple[Tensor, Tensor]] = None,
                 hidden_dim: int = 256, temperature: float = 0.05,
                 shared: bool = True):
        name = self.__class__.__name__
        if (user_text is None) == (history is None):
            raise ValueError(f"{name}: give either user_text or history")
        num_users = int(user_text.size(0)) if user_text is not None else \
            int(history[0].numel()) - 1
        super().__init__(num_users, int(item_text.size(0)))
        i = _text_table('item_text', name, item_text, self.num_items)
        self.register_buffer('item_text', i)
        if user_text is not None:
            u = _text_table('user_text', name, user_text, self.num_users)
            if u.size(1) != i.size(1):
                raise ValueError(f"{name}: user_text has {u.size(1)} columns "
                                 f"but item_text has {i.size(1)}")
            self.register_buffer('user_text', u)
            self.rowptr = self.col = None
        else:
            rowptr, col = (torch.as_tensor(t, dtype=torch.long)
                           for t in history)
            if col.numel() and (int(col.min()) < 0
                                or int(col.max()) >= self.num_items):
                raise ValueError(f"{name}: history holds item ids outside "
                                 f"[0, {self.num_items})")
            self.register_buffer('rowptr', rowptr)
            self.register_buffer('col', col)
            from pyg_recsys.text.profiles import mean_of_items
            sums = mean_of_items(rowptr, col, i, normalize=False) * \
                rowptr.diff().clamp(min=1).unsqueeze(1)
            self.register_buffer('history_sum', sums)
            self.user_text = None
        if temperature <= 0:
            raise ValueError(f"{name}: temperature must be positive, got "
                             f"{temperature}")
        d = int(i.size(1))
        self.embedding_dim = d
        self.temperature = float(temperature)
        self.shared = bool(shared)

        def adapter():
            mlp = torch.nn.Sequential(torch.nn.Linear(d, hidden_dim),
                                      torch.nn.GELU(),
                                      torch.nn.Linear(hidden_dim, d))
            torch.nn.init.zeros_(mlp[2].weight)
            torch.nn.init.zeros_(mlp[2].bias)
            return mlp

        self.item_adapter = adapter()
        self.user_adapter = self.item_adapter if shared else adapter()

    def reset_parameters(self):
        for mlp in {id(m): m for m in (self.item_adapter,
                                       self.user_adapter)}.values():
            mlp[0].reset_parameters()
            torch.nn.init.zeros_(mlp[2].weight)
            torch.nn.init.zeros_(mlp[2].bias)

    def _adapt(self, mlp, x: Tensor) -> Tensor:
        return F.normalize(x + mlp(x), dim=-1)

    def _profiles(self, users: OptTensor = None,
                  leave_out: OptTensor = None) -> Tensor:
        if self.user_text is not None:
            x = self.user_text if users is None else self.user_text[users]
            return F.normalize(x, dim=-1)
        count = self.rowptr.diff()
        s = self.history_sum if users is None else self.history_sum[users]
        n = count if users is None else count[users]
        if leave_out is not None:
            s = s - self.item_text[leave_out]
            n = n - 1
        return F.normalize(s / n.clamp(min=1).unsqueeze(1).to(s.dtype),
                           dim=-1)

    def get_embedding(self, edge_index: Adj = None,
                      edge_weight: OptTensor = None) -> Tensor:
        u = self._adapt(self.user_adapter, self._profiles())
        i = self._adapt(self.item_adapter, F.normalize(self.item_text,
                                                       dim=-1))
        return torch.cat([u, i])

    def training_loss(self, edge_index: Adj, users: Tensor, pos: Tensor,
                      neg: Tensor, lambda_reg: float = 0.0,
                      reg_scaling: str = 'lightgcn',
                      hard_negatives: bool = False
                      ) -> Tuple[Tensor, Dict[str, float]]:
        r"""InfoNCE of the pairs :obj:`(users, pos)` (node ids) with
        in-batch negatives; :obj:`neg` and :obj:`lambda_reg` are accepted
        for the Trainer's signature and unused."""
        users, items = self._user_item(users, pos)
        u = self._adapt(self.user_adapter, self._profiles(
            users, items if self.user_text is None else None))
        i = self._adapt(self.item_adapter,
                        F.normalize(self.item_text[items], dim=-1))
        loss = info_nce(u, i, self.temperature)
        return loss, {'info_nce': float(loss.detach())}


def _mlp(d_in: int, d: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.ReLU(),
                               torch.nn.Linear(d, d))


class TextFusion(_TextModel):
    r"""RecLM-style fusion of text into a collaborative-filtering backbone
    (reconstruction of the HKUDS/RecLM base models without the LLM
    tuning: their profiles are replaced by any given profile vectors).

    * **Item tower, text only**: :math:`\mathbf{e}_i =
      \mathrm{norm}(\mathrm{MLP}_t(\mathbf{t}_i))`, fused with
      :math:`\mathrm{MLP}_p(\mathbf{q}_i)` of an item profile by
      :math:`\mathrm{ReLU}(\mathbf{W}[\cdot;\cdot])` when one is given.
      There is no item id embedding, so an item never seen in training
      gets a score from its text.
    * **User tower**: an id embedding, fused with
      :math:`\mathrm{norm}(\mathrm{MLP}_p(\mathbf{p}_u))` of the user's
      profile when one is given (one fuse layer for both sides, as in
      RecLM).
    * **Backbone**: :obj:`'mf'` scores :math:`\mathbf{e}_u^\top
      \mathbf{e}_i`; :obj:`'lightgcn'` first propagates the layer-0 table
      :math:`[\mathbf{E}_U; \mathbf{E}_I]` over the training graph with
      :func:`~pyg_recsys.ops.light_propagate` and scores the propagated
      users against the item tower's output (items are not propagated, as
      in RecLM, so that trained and new items are on the same footing).

    Trained with BPR (the Trainer's :meth:`training_loss`), plus
    :math:`\lambda \|\mathbf{e}^{(0)}_u\|^2` on the users' id embeddings
    of the batch (and on the items' id embeddings, with :obj:`item_ids`);
    dropout on the text inputs and profile branches.

    Args:
        num_users (int): The number of users.
        item_text (torch.Tensor): Item text vectors, :obj:`[I, t]`.
        user_text (torch.Tensor, optional): User profile vectors,
            :obj:`[U, t']`.
        item_profile (torch.Tensor, optional): Item profile vectors,
            :obj:`[I, t']` (same width as :obj:`user_text`).
        embedding_dim (int, optional): :math:`d`. (default: :obj:`32`)
        backbone (str, optional): :obj:`'mf'` or :obj:`'lightgcn'`.
        num_layers (int, optional): LightGCN layers. (default: :obj:`2`)
        dropout (float, optional): On the text inputs and the profile
            branches. (default: :obj:`0.0`)
        text_bias (bool, optional): Add an item bias computed from the text,
            :math:`b_i = \mathbf{w}^\top \mathbf{t}_i` (BiasMF's item bias,
            from text so that new items get one too), as an extra column of
            the embeddings (users get a constant 1), so that scores stay dot
            products. (default: :obj:`False`)
        item_ids (bool, optional): Also give every item an id embedding,
            added to the tower's output and initialised at zero (this
            package's option, not RecLM's): items seen in training learn
            one, an item never seen keeps zero and is scored by its text
            alone. (default: :obj:`False`)
    """
    def __init__(self, num_users: int, item_text: Tensor,
                 user_text: OptTensor = None, item_profile: OptTensor = None,
                 embedding_dim: int = 32, backbone: str = 'mf',
                 num_layers: int = 2, dropout: float = 0.0,
                 text_bias: bool = False, item_ids: bool = False):
        name = self.__class__.__name__
        super().__init__(num_users, int(item_text.size(0)), None,
                         init_std=None)
        if backbone not in BACKBONES:
            raise ValueError(f"{name}: unknown backbone '{backbone}' "
                             f"(expected one of {BACKBONES})")
        if int(embedding_dim) <= 0 or int(num_layers) < 0:
            raise ValueError(f"{name}: embedding_dim must be positive and "
                             f"num_layers non-negative")
        i = _text_table('item_text', name, item_text, self.num_items)
        u = _text_table('user_text', name, user_text, self.num_users)
        q = _text_table('item_profile', name, item_profile, self.num_items)
        if q is not None and (u is None or q.size(1) != u.size(1)):
            raise ValueError(f"{name}: item_profile needs user_text of the "
                             f"same width")
        d = int(embedding_dim)
        self.embedding_dim = d
        self.backbone = backbone
        self.num_layers = int(num_layers)
        self.register_buffer('item_text', i)
        self.register_buffer('user_text', u)
        self.register_buffer('item_profile', q)
        self.user_embedding = torch.nn.Embedding(self.num_users, d)
        self.item_tower = _mlp(i.size(1), d)
        self.profile_tower = _mlp(u.size(1), d) if u is not None else None
        self.fuse = torch.nn.Sequential(torch.nn.Linear(2 * d, d),
                                        torch.nn.ReLU()) \
            if u is not None else None
        self.dropout = torch.nn.Dropout(dropout)
        self.bias = torch.nn.Linear(i.size(1), 1) if text_bias else None
        self.item_ids = torch.nn.Embedding(self.num_items, d) if item_ids \
            else None
        self.reset_parameters()

    def reset_parameters(self):
        torch.nn.init.xavier_uniform_(self.user_embedding.weight)
        for m in self.modules():
            if isinstance(m, torch.nn.Linear):
                m.reset_parameters()
        if self.item_ids is not None:
            torch.nn.init.zeros_(self.item_ids.weight)

    def item_embedding(self) -> Tensor:
        r"""The item tower's output for every item, :obj:`[I, d]`."""
        x = self.item_tower(self.dropout(self.item_text))
        if self.item_profile is not None:
            p = self.dropout(self.profile_tower(self.item_profile))
            x = self.dropout(self.fuse(torch.cat([x, p], dim=-1)))
        x = F.normalize(x, dim=-1)
        return x if self.item_ids is None else x + self.item_ids.weight

    def user_ego(self) -> Tensor:
        r"""The users' layer-0 embeddings, :obj:`[U, d]`."""
        x = self.user_embedding.weight
        if self.user_text is not None:
            p = F.normalize(self.dropout(self.profile_tower(self.user_text)),
                            dim=-1)
            x = self.fuse(torch.cat([x, p], dim=-1))
        return x

    def get_embedding(self, edge_index: Adj = None,
                      edge_weight: OptTensor = None) -> Tensor:
        items = self.item_embedding()
        users = self.user_ego()
        if self.backbone == 'lightgcn' and self.num_layers > 0:
            if edge_index is None:
                raise ValueError(f"{self.__class__.__name__}: the LightGCN "
                                 f"backbone needs the normalised adjacency")
            out = light_propagate(edge_index, torch.cat([users, items]),
                                  self.num_layers)
            users = out[:self.num_users]
        if self.bias is not None:
            users = torch.cat([users, users.new_ones(users.size(0), 1)], -1)
            items = torch.cat([items, self.bias(self.item_text)], -1)
        return torch.cat([users, items])

    def bpr_and_reg(self, final: Tensor, users: Tensor, pos: Tensor,
                    neg: Tensor, lambda_reg: float, reg_scaling: str,
                    n_id: Optional[Tensor] = None, **loss_options
                    ) -> Tuple[Tensor, Tensor]:
        # (n_id: never given, this model does not train on subgraphs.)
        # The ranking loss as every model; the penalty is on the id tables
        # this model has (users, and items with item_ids), not on a node
        # table.
        loss, reg = super().bpr_and_reg(final, users, pos, neg, 0.0,
                                        reg_scaling, **loss_options)
        if lambda_reg:
            reg = lambda_reg * self.user_embedding(users).pow(2).sum() / \
                users.numel()
            if self.item_ids is not None:
                rows = torch.cat([pos, neg.reshape(-1)]) - self.num_users
                reg = reg + lambda_reg * self.item_ids(rows).pow(2).sum() / \
                    users.numel()
        return loss, reg

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self._size_repr()}, '
                f'embedding_dim={self.embedding_dim}, '
                f'backbone={self.backbone!r}, '
                f'profiles={self.user_text is not None})')


class TextRegularizedLightGCN(LightGCN):
    r"""LightGCN with text alignment as a regulariser ("text-enhanced CF",
    the use of EasyRec's embeddings in ID-based models; reconstruction):
    besides BPR, the propagated embeddings of each batch's positive items
    are pulled towards a learned projection :math:`\mathbf{W}\mathbf{t}_i`
    of their text vectors by InfoNCE with in-batch negatives,
    :math:`\lambda_t \cdot \mathrm{InfoNCE}(\mathbf{W}\mathbf{t}_{i},
    \mathbf{e}_{i}; \tau)`. Scoring is plain LightGCN, so items without
    training interactions are not scored by their text.

    Args:
        num_users (int): The number of users.
        item_text (torch.Tensor): Item text vectors, :obj:`[I, t]`.
        embedding_dim (int, optional): :math:`d`. (default: :obj:`64`)
        num_layers (int, optional): LightGCN layers. (default: :obj:`3`)
        text_weight (float, optional): :math:`\lambda_t`.
            (default: :obj:`0.1`)
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.2`)
    """
    subgraphs = False  # its text term reads the whole table

    def __init__(self, num_users: int, item_text: Tensor,
                 embedding_dim: int = 64, num_layers: int = 3,
                 text_weight: float = 0.1, temperature: float = 0.2):
        name = self.__class__.__name__
        num_items = int(item_text.size(0))
        super().__init__(num_users=num_users, num_items=num_items,
                         embedding_dim=embedding_dim, num_layers=num_layers)
        t = _text_table('item_text', name, item_text, num_items)
        if temperature <= 0 or text_weight < 0:
            raise ValueError(f"{name}: temperature must be positive and "
                             f"text_weight non-negative")
        self.register_buffer('item_text', t)
        self.project = torch.nn.Linear(t.size(1), embedding_dim, bias=False)
        self.text_weight = float(text_weight)
        self.temperature = float(temperature)

    @property
    def init_kwargs(self):
        return None

    def propagate_for_loss(self, edge_index: Adj):
        final = self.get_embedding(edge_index)
        return final, final

    def extra_losses(self, state, users: Tensor, pos: Tensor
                     ) -> Dict[str, Tensor]:
        if not self.text_weight:
            return {}
        items = pos - self.num_users
        text = self.project(self.item_text[items])
        return {'text': self.text_weight * info_nce(
            text, state.index_select(0, pos), self.temperature)}
