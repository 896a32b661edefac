r"""Sequential user models: a recurrent user model over item vectors and
the time-decayed taste-vector baseline."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.nn.loss import softmax_cross_entropy

CELLS = ('gru', 'lstm')
LOSSES = ('ce', 'cosine')


class SequentialUserRNN(torch.nn.Module):
    r"""A recurrent user model that reads the items a user consumed, in
    order, and outputs a user vector in the item space, so that
    recommending is a nearest-neighbour search among the item vectors; after
    `"Large-Scale User Modeling with Recurrent Neural Networks for Music
    Discovery on Multiple Time Scales" <https://arxiv.org/abs/1708.06520>`_
    (De Boom et al.).

    **A reconstruction**: only the paper's abstract and its summary in this
    project's issue could be read; the architecture below (an RNN over the
    item vectors, a linear map to the item space, cosine or softmax
    training objectives) follows that description, and nothing else of the
    paper (its context features, layer sizes, training schedule) is
    verified.

    .. math::
        \mathbf{h}_t = \mathrm{RNN}(\mathbf{v}_{i_t}, \mathbf{h}_{t-1}),
        \qquad \mathbf{u}_t = \mathbf{W} \mathbf{h}_t + \mathbf{b},

    and the score of item :math:`j` after step :math:`t` is
    :math:`\mathbf{u}_t^\top \mathbf{v}_j` (both L2-normalised and divided
    by :obj:`temperature` when :obj:`normalize=True`).

    Args:
        num_items (int): The number of items :math:`I`.
        embedding_dim (int, optional): The size of the item vectors.
            (default: :obj:`64`)
        hidden_dim (int, optional): The RNN state size. (default:
            :obj:`embedding_dim`)
        cell (str, optional): :obj:`'gru'` or :obj:`'lstm'`.
            (default: :obj:`'gru'`)
        num_layers (int, optional): Stacked RNN layers. (default: :obj:`1`)
        dropout (float, optional): Dropout on the item vectors fed to the
            RNN. (default: :obj:`0.0`)
        item_vectors (torch.Tensor, optional): Item vectors from any source,
            :obj:`[I, embedding_dim]` (item2vec, a graph model, text);
            :obj:`None` learns them jointly. (default: :obj:`None`)
        freeze (bool, optional): Keep :obj:`item_vectors` fixed.
            (default: :obj:`False`)
        normalize (bool, optional): Score by cosine similarity divided by
            :obj:`temperature`. (default: :obj:`False`)
        temperature (float, optional): See :obj:`normalize`.
            (default: :obj:`0.1`)
        context_dim (int, optional): Context features per event (e.g.
            :meth:`~pyg_recsys.data.sequences.SequenceData.context`),
            concatenated to the item vector at the RNN input.
            (default: :obj:`0`)
        residual (bool or str, optional): Add a vector of the items read to
            the output, so that the RNN learns a correction to it (this
            package's option, not the paper's): :obj:`'last'` (or
            :obj:`True`) the step's own item, :math:`\mathbf{u}_t =
            \mathbf{W}\mathbf{h}_t + \mathbf{b} + \mathbf{v}_{i_t}`;
            :obj:`'mean'` the mean of the items read so far,
            :math:`\frac1t \sum_{s \le t} \mathbf{v}_{i_s}` (the
            undecayed taste vector). (default: :obj:`False`)

    Shapes:
        - **input:** item ids :math:`(B, L)` padded with :obj:`-1` on the
          right, lengths :math:`(B)` (at least 1), context :math:`(B, L,
          C)` when :obj:`context_dim = C > 0`
        - **output:** user vectors :math:`(B, d)` after the last item, or
          :math:`(B, L, d)` after every item
    """
    def __init__(self, num_items: int, embedding_dim: int = 64,
                 hidden_dim: Optional[int] = None, cell: str = 'gru',
                 num_layers: int = 1, dropout: float = 0.0,
                 item_vectors: Optional[Tensor] = None, freeze: bool = False,
                 normalize: bool = False, temperature: float = 0.1,
                 context_dim: int = 0, residual=False):
        super().__init__()
        name = self.__class__.__name__
        if int(num_items) <= 0 or int(embedding_dim) <= 0:
            raise ValueError(f"{name}: num_items and embedding_dim must be "
                             f"positive, got {num_items}, {embedding_dim}")
        if cell not in CELLS:
            raise ValueError(f"{name}: cell must be one of {CELLS}, got "
                             f"'{cell}'")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got "
                             f"{dropout}")
        if int(context_dim) < 0:
            raise ValueError(f"{name}: context_dim must be >= 0, got "
                             f"{context_dim}")
        if not temperature > 0:
            raise ValueError(f"{name}: temperature must be positive, got "
                             f"{temperature}")
        self.num_items = int(num_items)
        self.embedding_dim = int(embedding_dim)
        self.hidden_dim = int(hidden_dim or embedding_dim)
        self.cell = cell
        self.normalize = normalize
        self.temperature = float(temperature)
        self.freeze = freeze
        self.context_dim = int(context_dim)
        residual = {False: None, None: None, True: 'last'}.get(residual,
                                                                residual)
        if residual not in (None, 'last', 'mean'):
            raise ValueError(f"{name}: residual must be False, True, 'last' "
                             f"or 'mean', got {residual!r}")
        self.residual = residual
        # Row I is the padding vector (zeros, never trained).
        self.item_embedding = torch.nn.Embedding(self.num_items + 1,
                                                 self.embedding_dim,
                                                 padding_idx=self.num_items)
        self._given = item_vectors is not None
        if item_vectors is not None:
            item_vectors = torch.as_tensor(item_vectors, dtype=torch.float)
            if tuple(item_vectors.shape) != (self.num_items,
                                             self.embedding_dim):
                raise ValueError(f"{name}: item_vectors must have shape "
                                 f"[{self.num_items}, {self.embedding_dim}], "
                                 f"got {tuple(item_vectors.shape)}")
            if not bool(torch.isfinite(item_vectors).all()):
                raise ValueError(f"{name}: item_vectors contain NaN or "
                                 f"infinite values")
            self.register_buffer('_init_vectors', item_vectors.clone())
        rnn = torch.nn.GRU if cell == 'gru' else torch.nn.LSTM
        self.rnn = rnn(self.embedding_dim + self.context_dim,
                       self.hidden_dim, num_layers, batch_first=True)
        self.dropout = torch.nn.Dropout(dropout)
        self.proj = torch.nn.Linear(self.hidden_dim, self.embedding_dim)
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            if self._given:
                self.item_embedding.weight[:-1] = self._init_vectors
            else:
                torch.nn.init.normal_(self.item_embedding.weight[:-1],
                                      std=self.embedding_dim ** -0.5)
            self.item_embedding.weight[-1].zero_()
        self.item_embedding.weight.requires_grad_(not self.freeze)
        self.rnn.reset_parameters()
        self.proj.reset_parameters()

    # ------------------------------------------------------------------
    def _check(self, seq: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        name = self.__class__.__name__
        if seq.dim() != 2:
            raise ValueError(f"{name}: expected item ids of shape [B, L], got "
                             f"{tuple(seq.shape)}")
        lengths = torch.as_tensor(lengths, dtype=torch.long,
                                  device=seq.device).view(-1)
        if lengths.numel() != seq.size(0):
            raise ValueError(f"{name}: {lengths.numel()} lengths for "
                             f"{seq.size(0)} sequences")
        if lengths.numel() and (int(lengths.min()) < 1
                                or int(lengths.max()) > seq.size(1)):
            raise ValueError(f"{name}: lengths must lie in [1, {seq.size(1)}]"
                             f" (an empty history has no user vector)")
        valid = torch.arange(seq.size(1), device=seq.device) < \
            lengths.view(-1, 1)
        ids = seq[valid]
        if ids.numel() and (int(ids.min()) < 0
                            or int(ids.max()) >= self.num_items):
            raise ValueError(f"{name}: item ids must lie in "
                             f"[0, {self.num_items}) within each length")
        return seq.masked_fill(~valid, self.num_items), lengths

    def _context(self, seq: Tensor, context: Optional[Tensor]
                 ) -> Optional[Tensor]:
        name = self.__class__.__name__
        if self.context_dim == 0:
            if context is not None:
                raise ValueError(f"{name}: context given to a model built "
                                 f"with context_dim=0")
            return None
        if context is None or tuple(context.shape) != (
                seq.size(0), seq.size(1), self.context_dim):
            got = None if context is None else tuple(context.shape)
            raise ValueError(f"{name}: context must be [{seq.size(0)}, "
                             f"{seq.size(1)}, {self.context_dim}], got {got}")
        if not bool(torch.isfinite(context).all()):
            raise ValueError(f"{name}: context contains NaN or infinite "
                             f"values")
        return context.to(self.item_embedding.weight.dtype)

    def forward(self, seq: Tensor, lengths: Tensor, all_steps: bool = False,
                context: Optional[Tensor] = None) -> Tensor:
        seq, lengths = self._check(seq, lengths)
        context = self._context(seq, context)
        emb = self.item_embedding(seq)
        x = self.dropout(emb)
        if self.residual == 'mean':  # padding rows are zero vectors
            steps = torch.arange(1, seq.size(1) + 1, device=emb.device)
            emb = emb.cumsum(1) / steps.view(1, -1, 1).to(emb.dtype)
        if context is not None:
            x = torch.cat([x, context], dim=-1)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=seq.size(1))
        if not all_steps:
            last = torch.arange(out.size(0), device=out.device), lengths - 1
            out, emb = out[last], emb[last]
        user = self.proj(out)
        if self.residual is not None:
            user = user + emb
        return F.normalize(user, dim=-1) if self.normalize else user

    def item_vectors(self) -> Tensor:
        r"""The item vectors that user vectors are scored against,
        :obj:`[I, d]`."""
        w = self.item_embedding.weight[:-1]
        return F.normalize(w, dim=-1) if self.normalize else w

    def scores(self, user: Tensor) -> Tensor:
        r"""Scores of every item for user vectors :obj:`[..., d]`."""
        s = user @ self.item_vectors().t()
        return s / self.temperature if self.normalize else s

    def loss(self, seq: Tensor, lengths: Tensor, kind: str = 'ce',
             window: int = 1, num_negatives: Optional[int] = None,
             generator: Optional[torch.Generator] = None,
             context: Optional[Tensor] = None,
             skip: Optional[Tensor] = None
             ) -> Tuple[Tensor, Dict[str, float]]:
        r"""The training loss of right-padded sequences: every prefix
        :obj:`seq[:, :t]` predicts what follows it.

        * :obj:`'ce'`: softmax cross-entropy over all items of the next
          item (the objective of the strongest current models); with
          :obj:`num_negatives`, over the next item and that many items
          drawn uniformly (shared by the batch; a draw that equals a row's
          target is left out of that row), a sampled softmax;
        * :obj:`'cosine'`: one minus the cosine similarity between the user
          vector and the mean vector of the next :obj:`window` items (the
          next item for :obj:`window=1`, the short time scale; a longer
          window, the long time scale).

        :obj:`context` is the model's input context :obj:`[B, L, C]`;
        :obj:`skip` (:obj:`[B, L]`, bool) marks skipped events, which are
        read as input but never predicted (nor averaged into a window).

        Returns:
            (torch.Tensor, dict): the mean loss over all predicted
            positions, and :obj:`{kind: value}`.
        """
        if kind not in LOSSES:
            raise ValueError(f"loss: kind must be one of {LOSSES}, got "
                             f"'{kind}'")
        if int(window) < 1:
            raise ValueError(f"loss: window must be >= 1, got {window}")
        seq, lengths = self._check(seq, lengths)
        if int(lengths.max()) < 2:
            raise ValueError("loss: every sequence has a single item; there "
                             "is nothing to predict")
        user = self.forward(seq, lengths, all_steps=True,
                            context=context)[:, :-1]
        target = seq[:, 1:]
        mask = torch.arange(target.size(1), device=seq.device) < \
            (lengths - 1).view(-1, 1)
        if skip is not None:
            if tuple(skip.shape) != tuple(seq.shape):
                raise ValueError(f"loss: skip must be {tuple(seq.shape)}, "
                                 f"got {tuple(skip.shape)}")
            skipped = skip[:, 1:].to(seq.device).bool()
            mask = mask & ~skipped
            target = target.masked_fill(skipped, self.num_items)
        if not bool(mask.any()):  # every target skipped: nothing to learn
            return user.sum() * 0.0, {kind: 0.0}
        if kind == 'ce' and num_negatives:
            u, t = user[mask], target[mask]
            vec = self.item_vectors()
            neg = torch.randint(0, self.num_items, (int(num_negatives), ),
                                generator=generator).to(u.device)
            pos = (u * vec[t]).sum(-1, keepdim=True)
            other = (u @ vec[neg].t()).masked_fill(
                neg.view(1, -1) == t.view(-1, 1), float('-inf'))
            logits = torch.cat([pos, other], dim=1)
            if self.normalize:
                logits = logits / self.temperature
            loss = -F.log_softmax(logits, dim=1)[:, 0].mean()
        elif kind == 'ce':
            u = user[mask]
            if self.normalize:
                u = u / self.temperature
            loss = softmax_cross_entropy(u, self.item_vectors(), target[mask])
        else:
            vec = self.item_vectors()
            pad = torch.cat([vec, vec.new_zeros(1, vec.size(1))])
            summed = pad[target].clone()
            count = mask.float()
            for shift in range(1, int(window)):
                nxt = F.pad(target[:, shift:], (0, shift),
                            value=self.num_items)
                summed = summed + pad[nxt]
                count = count + (nxt != self.num_items).float() * mask
            goal = summed / count.clamp(min=1).unsqueeze(-1)
            cos = F.cosine_similarity(user[mask], goal[mask], dim=-1)
            loss = (1 - cos).mean()
        return loss, {kind: float(loss.detach())}

    @torch.no_grad()
    def recommend(self, seq: Tensor, lengths: Tensor, k: int = 10,
                  exclude_history: bool = True,
                  batch_size: int = 1024,
                  context: Optional[Tensor] = None) -> Tensor:
        r"""The top-:obj:`k` item ids after each sequence, best first (ties
        to the lower id), never an item of the sequence itself when
        :obj:`exclude_history`. Rows with fewer candidates are padded with
        :obj:`-1`."""
        from pyg_recsys.metrics import topk
        seq, lengths = self._check(seq, lengths)
        user = self.forward(seq, lengths, context=context)
        exclude = None
        if exclude_history:
            valid = seq != self.num_items
            rows = torch.arange(seq.size(0), device=seq.device).view(
                -1, 1).expand_as(seq)
            exclude = torch.stack([rows[valid], seq[valid]]).cpu()
        items = self.item_vectors()
        if self.normalize:
            user = user / self.temperature
        return topk(user, items, None, k, exclude=exclude,
                    batch_size=batch_size)[1]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_items}, '
                f'embedding_dim={self.embedding_dim}, cell={self.cell!r}, '
                f'hidden_dim={self.hidden_dim})')


class TasteVector(torch.nn.Module):
    r"""The taste-vector baseline of De Boom et al.: a user is the
    time-decayed mean of the vectors of the items in the history,
    :math:`\mathbf{u} = \sum_t \gamma^{T-t} \mathbf{v}_{i_t} / \sum_t
    \gamma^{T-t}` (the most recent item has weight 1), scored against the
    item vectors by dot product (cosine after normalisation). Has nothing
    to train.

    Args:
        item_vectors (torch.Tensor): :obj:`[I, d]`.
        decay (float, optional): :math:`\gamma \in (0, 1]`; 1 is the plain
            mean. (default: :obj:`0.9`)
        normalize (bool, optional): L2-normalise the item vectors first.
            (default: :obj:`True`)
    """
    def __init__(self, item_vectors: Tensor, decay: float = 0.9,
                 normalize: bool = True):
        super().__init__()
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"TasteVector: decay must be in (0, 1], got "
                             f"{decay}")
        item_vectors = torch.as_tensor(item_vectors, dtype=torch.float)
        if item_vectors.dim() != 2:
            raise ValueError("TasteVector: item_vectors must be [I, d]")
        if normalize:
            item_vectors = F.normalize(item_vectors, dim=-1)
        self.register_buffer('vectors', item_vectors)
        self.num_items = item_vectors.size(0)
        self.decay = float(decay)

    def forward(self, seq: Tensor, lengths: Tensor) -> Tensor:
        lengths = torch.as_tensor(lengths, dtype=torch.long,
                                  device=seq.device).view(-1)
        if lengths.numel() and int(lengths.min()) < 1:
            raise ValueError("TasteVector: every history needs an item")
        pos = torch.arange(seq.size(1), device=seq.device).view(1, -1)
        valid = pos < lengths.view(-1, 1)
        age = (lengths.view(-1, 1) - 1 - pos).clamp(min=0).float()
        weight = torch.pow(torch.tensor(self.decay), age) * valid
        vec = self.vectors[seq.clamp(min=0)]
        return (weight.unsqueeze(-1) * vec).sum(1) / \
            weight.sum(1, keepdim=True)

    def item_vectors(self) -> Tensor:
        return self.vectors

    def scores(self, user: Tensor) -> Tensor:
        return user @ self.vectors.t()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_items={self.num_items}, '
                f'decay={self.decay})')


class MostPopularNext(torch.nn.Module):
    r"""The most-popular baseline for next-item prediction: every history
    gets the items ranked by their count in the training sequences.

    Args:
        counts (torch.Tensor): Training occurrences per item, :obj:`[I]`.
    """
    def __init__(self, counts: Tensor):
        super().__init__()
        counts = torch.as_tensor(counts, dtype=torch.float).view(-1)
        self.register_buffer('counts', counts)
        self.num_items = counts.numel()

    def forward(self, seq: Tensor, lengths: Tensor) -> Tensor:
        return self.counts.new_ones(seq.size(0), 1)

    def scores(self, user: Tensor) -> Tensor:
        return user * self.counts.view(1, -1)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_items={self.num_items})'
