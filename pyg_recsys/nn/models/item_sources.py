r"""Item vectors for sequential user models, from any source, behind one
function: :func:`item_vectors`.

* :obj:`'item2vec'`: skip-gram with negative sampling over the training
  sequences (:func:`item2vec`, pure PyTorch);
* :obj:`'lightgcn'`: the item rows of this package's
  :class:`~pyg_recsys.nn.models.LightGCN` trained with BPR on the user-item
  graph of the training sequences (:func:`lightgcn_item_vectors`);
* :obj:`'transition'`: item2vec vectors smoothed by
  :class:`~pyg_recsys.nn.conv.LightConv` over the item-item transition graph
  (:func:`transition_graph`, a PyG :class:`~torch_geometric.data.Data`);
* :obj:`'learned'`: :obj:`None`, i.e. a table trained jointly with the user
  model (the GRU4Rec setting);
* a tensor :obj:`[I, d]` the caller passes (e.g. text embeddings).
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.data.sequences import SequenceData

SOURCES = ('learned', 'item2vec', 'lightgcn', 'transition')


def _pairs(data: SequenceData, window: int) -> Tensor:
    # (earlier, later) item pairs at most `window` steps apart in a sequence.
    row = SequenceData._row_of(data.ptr)
    out = []
    for shift in range(1, int(window) + 1):
        same = row[shift:] == row[:-shift]
        out.append(torch.stack([data.items[:-shift][same],
                                data.items[shift:][same]]))
    return torch.cat(out, dim=1) if out else torch.empty(2, 0,
                                                         dtype=torch.long)


def transition_graph(data: SequenceData, window: int = 1,
                     symmetric: bool = True):
    r"""The item-item transition graph of the sequences as a PyG
    :class:`~torch_geometric.data.Data`: an edge :math:`i \to j` for every
    time :obj:`j` follows :obj:`i` within :obj:`window` steps in a user's
    sequence, :obj:`edge_weight` the number of times (self-transitions
    dropped); with :obj:`symmetric`, each edge in both directions (the
    weights added). :obj:`num_nodes` is the number of items."""
    from torch_geometric.data import Data
    if int(window) < 1:
        raise ValueError(f"transition_graph: window must be >= 1, got "
                         f"{window}")
    pairs = _pairs(data, window)
    pairs = pairs[:, pairs[0] != pairs[1]]
    if symmetric:
        pairs = torch.cat([pairs, pairs.flip(0)], dim=1)
    key = pairs[0] * data.num_items + pairs[1]
    key, count = torch.unique(key, return_counts=True)
    edge_index = torch.stack([key // data.num_items, key % data.num_items])
    return Data(edge_index=edge_index, edge_weight=count.float(),
                num_nodes=data.num_items)


def item2vec(data: SequenceData, embedding_dim: int = 64, window: int = 5,
             num_negatives: int = 5, epochs: int = 5,
             batch_size: int = 4096, lr: float = 0.01, power: float = 0.75,
             seed: int = 0) -> Tensor:
    r"""Item2vec: skip-gram with negative sampling over the sequences, every
    item predicting the items up to :obj:`window` steps before and after it,
    with :obj:`num_negatives` noise items per pair drawn from the item
    counts raised to :obj:`power` (word2vec's 0.75). Minimises
    :math:`-\log\sigma(\mathbf{w}_i^\top\mathbf{c}_j) - \sum_n
    \log\sigma(-\mathbf{w}_i^\top\mathbf{c}_n)` with Adam and returns the
    input vectors :math:`\mathbf{W}`, :obj:`[I, embedding_dim]`.

    Items that never occur keep their small random initial vectors.
    """
    if len(data.items) == 0:
        raise ValueError("item2vec: the sequences hold no events")
    for key, val in (('embedding_dim', embedding_dim), ('window', window),
                     ('num_negatives', num_negatives), ('epochs', epochs),
                     ('batch_size', batch_size)):
        if int(val) < 1:
            raise ValueError(f"item2vec: {key} must be >= 1, got {val}")
    pairs = _pairs(data, window)
    pairs = torch.cat([pairs, pairs.flip(0)], dim=1)
    if pairs.size(1) == 0:
        raise ValueError("item2vec: no sequence has two items; there is no "
                         "context to learn from")
    gen = torch.Generator().manual_seed(int(seed))
    num, dim = data.num_items, int(embedding_dim)
    w_in = torch.nn.Embedding(num, dim)
    w_out = torch.nn.Embedding(num, dim)
    with torch.no_grad():
        w_in.weight.uniform_(-0.5 / dim, 0.5 / dim, generator=gen)
        w_out.weight.zero_()
    noise = torch.bincount(data.items, minlength=num).double().pow(power)
    opt = torch.optim.Adam([w_in.weight, w_out.weight], lr=lr)
    for _ in range(int(epochs)):
        order = torch.randperm(pairs.size(1), generator=gen)
        for start in range(0, order.numel(), int(batch_size)):
            center, context = pairs[:, order[start:start + int(batch_size)]]
            neg = torch.multinomial(noise, center.numel() * num_negatives,
                                    replacement=True, generator=gen)
            w = w_in(center)
            pos = (w * w_out(context)).sum(-1)
            other = torch.bmm(w_out(neg).view(center.numel(), num_negatives,
                                              dim), w.unsqueeze(-1))
            loss = -(F.logsigmoid(pos).mean()
                     + F.logsigmoid(-other).sum((1, 2)).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return w_in.weight.detach().clone()


def lightgcn_item_vectors(data: SequenceData, embedding_dim: int = 64,
                          num_layers: int = 3, epochs: int = 30,
                          seed: int = 0, **config) -> Tensor:
    r"""The item rows of the final (layer-combined) embedding of a
    :class:`~pyg_recsys.nn.models.LightGCN` trained with BPR on the
    user-item graph of the sequences (every user linked to the items of its
    sequence, order ignored); :obj:`config` goes to
    :class:`~pyg_recsys.train.TrainConfig`."""
    from pyg_recsys.data.graph import InteractionGraph
    from pyg_recsys.nn.models.lightgcn import LightGCN
    from pyg_recsys.train.config import TrainConfig
    from pyg_recsys.train.trainer import Trainer
    if len(data.items) == 0:
        raise ValueError("lightgcn_item_vectors: the sequences hold no "
                         "events")
    row = SequenceData._row_of(data.ptr)
    key = torch.unique(row * data.num_items + data.items)
    pairs = torch.stack([key // data.num_items, key % data.num_items])
    graph = InteractionGraph(data.num_users, data.num_items, pairs,
                             name='sequences')
    torch.manual_seed(int(seed))
    model = LightGCN(embedding_dim=embedding_dim, num_layers=num_layers,
                     num_users=data.num_users, num_items=data.num_items)
    cfg = TrainConfig(**{'epochs': epochs, 'seed': seed, 'select': 'last',
                         'patience': 0, 'lr': 1e-3, 'batch_size': 2048,
                         'device': 'cpu', **config})
    Trainer(model, graph, cfg, progress=False).fit()
    model.eval()
    with torch.no_grad():
        out = model.get_embedding(graph.norm_adj())
    return out[data.num_users:].detach().clone()


def smooth_item_vectors(vectors: Tensor, graph, num_layers: int = 2,
                        alpha: Optional[float] = None) -> Tensor:
    r"""Propagates :obj:`vectors` :obj:`[I, d]` over an item graph (e.g.
    :func:`transition_graph`) with :class:`~pyg_recsys.nn.conv.LightConv`
    (symmetric normalisation by the weighted degree) and returns the mean of
    layers :math:`0..K` (LightGCN's combination; :obj:`alpha` weights
    otherwise)."""
    from pyg_recsys.nn.conv import LightConv
    if vectors.dim() != 2 or vectors.size(0) != graph.num_nodes:
        raise ValueError(f"smooth_item_vectors: vectors must be "
                         f"[{graph.num_nodes}, d], got "
                         f"{tuple(vectors.shape)}")
    conv = LightConv(cached=True)
    x, out = vectors, [vectors]
    for _ in range(int(num_layers)):
        x = conv(x, graph.edge_index, graph.edge_weight)
        out.append(x)
    weight = alpha or [1.0 / len(out)] * len(out)
    return sum(w * h for w, h in zip(weight, out))


def item_vectors(source: Union[str, Tensor, None], data: SequenceData,
                 embedding_dim: int = 64, seed: int = 0,
                 **kwargs) -> Optional[Tensor]:
    r"""Item vectors for :class:`SequentialUserRNN` from :obj:`source` (see
    the module docstring), computed on the training sequences :obj:`data`.
    Returns :obj:`None` for :obj:`'learned'`; a tensor is checked and
    returned as it is."""
    if source is None or isinstance(source, Tensor):
        if source is not None and (source.dim() != 2 or
                                   source.size(0) != data.num_items):
            raise ValueError(f"item_vectors: a tensor source must be "
                             f"[{data.num_items}, d], got "
                             f"{tuple(source.shape)}")
        return source
    if source not in SOURCES:
        raise ValueError(f"item_vectors: source must be one of {SOURCES} or "
                         f"a tensor, got '{source}'")
    if source == 'learned':
        return None
    if source == 'lightgcn':
        return lightgcn_item_vectors(data, embedding_dim, seed=seed,
                                     **kwargs)
    layers = kwargs.pop('num_layers', 2)
    vec = item2vec(data, embedding_dim, seed=seed, **kwargs)
    if source == 'transition':
        vec = smooth_item_vectors(vec, transition_graph(data), layers)
    return vec
