r"""The user-item interaction graph and its splits."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from pyg_recsys.ops.csr import mark_normalized, mark_symmetric

SPLITS = ('train', 'valid', 'test')


def _check_pairs(name: str, pairs: Optional[Tensor], num_users: int,
                 num_items: int) -> Optional[Tensor]:
    if pairs is None:
        return None
    pairs = torch.as_tensor(pairs)
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"InteractionGraph: '{name}' must have shape "
                         f"[2, num_interactions] (user row, item row), got "
                         f"{tuple(pairs.shape)}")
    if pairs.is_floating_point() or pairs.dtype == torch.bool:
        raise TypeError(f"InteractionGraph: '{name}' must hold integer ids, "
                        f"got {pairs.dtype}")
    pairs = pairs.to(torch.int64)
    if pairs.numel() > 0:
        for row, what, n in ((0, 'user', num_users), (1, 'item', num_items)):
            lo, hi = int(pairs[row].min()), int(pairs[row].max())
            if lo < 0:
                raise ValueError(f"InteractionGraph: '{name}' holds a negative "
                                 f"{what} id ({lo})")
            if hi >= n:
                raise ValueError(f"InteractionGraph: '{name}' holds {what} id "
                                 f"{hi}, out of range for num_{what}s={n}")
    return pairs


def _keys(pairs: Tensor, num_items: int) -> Tensor:
    return pairs[0] * num_items + pairs[1]


def normalized_adjacency(pairs: Tensor, num_users: int, num_items: int,
                         dtype: torch.dtype = torch.float32, device=None,
                         edge_index: Optional[Tensor] = None) -> Tensor:
    r"""The normalised adjacency :math:`\mathbf{D}^{-1/2}\mathbf{A}
    \mathbf{D}^{-1/2}` (no self-loops) of the homogeneous view of the
    bipartite graph with interactions :obj:`pairs`: users at nodes
    :obj:`0..U-1`, items at :obj:`U..U+I-1`, every interaction an edge in
    both directions. This is what :meth:`InteractionGraph.norm_adj` caches
    for the training split, and what sampled graphs (see
    :mod:`pyg_recsys.data.graph_generators`) are turned into.

    Args:
        pairs (torch.Tensor): Distinct :obj:`(user, item)` pairs, shape
            :obj:`[2, E]`, ids 0-based (not checked here).
        num_users (int): The number of users :math:`U`.
        num_items (int): The number of items :math:`I`.
        dtype (torch.dtype, optional): Value type. (default:
            :obj:`torch.float32`)
        device (torch.device, optional): Where the result goes.
            (default: :obj:`None`, the CPU)
        edge_index (torch.Tensor, optional): The homogeneous edges of
            :obj:`pairs` when already built (:obj:`[2, 2E]`, forward
            edges first). (default: :obj:`None`)

    Returns:
        torch.Tensor: An :obj:`[N, N]` :obj:`torch.sparse_csr` tensor,
        :math:`N = U + I`, with int64 offsets, marked symmetric for
        :func:`pyg_recsys.ops.spmm`.
    """
    n = int(num_users) + int(num_items)
    if edge_index is None:
        u, i = pairs[0], pairs[1] + int(num_users)
        edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
    row, col = edge_index
    order = torch.argsort(row * n + col)
    row, col = row[order], col[order]
    deg = torch.bincount(row, minlength=n).to(torch.float64)
    dinv = deg.pow(-0.5)
    dinv[deg == 0] = 0.0
    value = (dinv[row] * dinv[col]).to(dtype)
    rowptr = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=rowptr[1:])
    with warnings.catch_warnings():  # 'sparse CSR is in beta'
        warnings.simplefilter('ignore', UserWarning)
        adj = torch.sparse_csr_tensor(rowptr, col, value, (n, n),
                                      check_invariants=False)
    if device is not None:
        adj = adj.to(device)
    return mark_normalized(mark_symmetric(adj))


class InteractionGraph:
    r"""A bipartite user-item interaction graph with train / valid / test
    interactions.

    Users are nodes :obj:`0..U-1` and items nodes :obj:`U..U+I-1` of the
    homogeneous view (PyG's LightGCN convention). The symmetric-normalised
    training adjacency :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}\mathbf{A}
    \mathbf{D}^{-1/2}` (no self-loops) is built once and cached as a
    :obj:`torch.sparse_csr` tensor.

    Behaviour on imperfect input (documented and tested):

    * ids must lie in :obj:`[0, num_users)` / :obj:`[0, num_items)`; a
      negative or out-of-range id raises :class:`ValueError`;
    * a pair repeated within one split is kept once, with a warning;
    * a pair present in two splits raises :class:`ValueError` (a leak);
    * users or items without any interaction are allowed: they keep their
      embedding rows, and users without test items are not evaluated.

    Args:
        num_users (int): The number of users :math:`U`.
        num_items (int): The number of items :math:`I`.
        train (torch.Tensor): Training pairs, shape :obj:`[2, E]` (user ids in
            row 0, item ids in row 1, both 0-based).
        valid (torch.Tensor, optional): Validation pairs. (default: :obj:`None`)
        test (torch.Tensor, optional): Test pairs. (default: :obj:`None`)
        name (str, optional): A name for display. (default: :obj:`None`)
        user_ids (list, optional): The raw id of every user
            (:obj:`user_ids[u]`), e.g. from :func:`~pyg_recsys.data.remap_ids`;
            :obj:`None` when the ids are the raw ids. (default: :obj:`None`)
        item_ids (list, optional): The same for items. (default: :obj:`None`)
    """
    def __init__(self, num_users: int, num_items: int, train: Tensor,
                 valid: Optional[Tensor] = None,
                 test: Optional[Tensor] = None, name: Optional[str] = None,
                 user_ids: Optional[Sequence] = None,
                 item_ids: Optional[Sequence] = None):
        if int(num_users) <= 0 or int(num_items) <= 0:
            raise ValueError(f"InteractionGraph: needs at least one user and "
                             f"one item, got num_users={num_users}, "
                             f"num_items={num_items}")
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.name = name
        self.user_ids = self._vocab('user_ids', user_ids, self.num_users)
        self.item_ids = self._vocab('item_ids', item_ids, self.num_items)
        splits = {}
        for split, pairs in zip(SPLITS, (train, valid, test)):
            pairs = _check_pairs(split, pairs, self.num_users, self.num_items)
            if pairs is not None:
                pairs = self._dedup(split, pairs)
            splits[split] = pairs
        if splits['train'] is None or splits['train'].size(1) == 0:
            raise ValueError("InteractionGraph: the training split is empty")
        self._check_disjoint(splits)
        self.train: Tensor = splits['train']
        self.valid: Optional[Tensor] = splits['valid']
        self.test: Optional[Tensor] = splits['test']
        self._cache: Dict[str, object] = {}

    @staticmethod
    def _vocab(name: str, ids, n: int) -> Optional[List]:
        if ids is None:
            return None
        ids = [i.item() if hasattr(i, 'item') else i for i in ids]
        if len(ids) != n:
            raise ValueError(f"InteractionGraph: '{name}' has {len(ids)} "
                             f"entries for {n} ids")
        if len(set(ids)) != n:
            raise ValueError(f"InteractionGraph: '{name}' repeats a raw id")
        return ids

    def _lookup(self, what: str, raw) -> Tensor:
        vocab = self.user_ids if what == 'user' else self.item_ids
        n = self.num_users if what == 'user' else self.num_items
        raw = list(raw)
        if vocab is None:
            out = []
            for r in raw:
                try:
                    i = int(r)
                except (TypeError, ValueError):
                    raise ValueError(f"unknown {what} id {r!r} (this graph's "
                                     f"{what} ids are 0..{n - 1})") from None
                if not 0 <= i < n:
                    raise ValueError(f"unknown {what} id {r!r} (this graph's "
                                     f"{what} ids are 0..{n - 1})")
                out.append(i)
            return torch.tensor(out, dtype=torch.long)
        key = f'{what}_index'
        if key not in self._cache:
            self._cache[key] = {str(v): k for k, v in enumerate(vocab)}
        index = self._cache[key]
        out = []
        for r in raw:
            if str(r) not in index:
                raise ValueError(f"unknown {what} id {r!r} (not in the "
                                 f"data's {n} {what}s)")
            out.append(index[str(r)])
        return torch.tensor(out, dtype=torch.long)

    def user_index(self, raw_ids) -> Tensor:
        r"""The user ids (rows) of the raw user ids :obj:`raw_ids` (any
        iterable; compared as strings, so :obj:`'42'` finds :obj:`42`);
        an unknown id raises :class:`ValueError` naming it."""
        return self._lookup('user', raw_ids)

    def item_index(self, raw_ids) -> Tensor:
        r"""Like :meth:`user_index` for items."""
        return self._lookup('item', raw_ids)

    def raw_users(self, index) -> List:
        r"""The raw ids of users :obj:`index` (the ids themselves when the
        graph has no vocabulary)."""
        index = torch.as_tensor(index).view(-1).tolist()
        return index if self.user_ids is None else \
            [self.user_ids[i] for i in index]

    def raw_items(self, index) -> List:
        r"""Like :meth:`raw_users` for items."""
        index = torch.as_tensor(index).view(-1).tolist()
        return index if self.item_ids is None else \
            [self.item_ids[i] for i in index]

    def state_dict(self) -> Dict[str, object]:
        r"""Everything the graph is made of (sizes, splits, vocabularies,
        name), as tensors, lists and numbers that
        :obj:`torch.load(weights_only=True)` reads back; see
        :meth:`from_state_dict`."""
        small = self.num_users < 2**31 and self.num_items < 2**31
        out: Dict[str, object] = {
            'num_users': self.num_users, 'num_items': self.num_items,
            'name': self.name, 'user_ids': self.user_ids,
            'item_ids': self.item_ids}
        for split in SPLITS:
            pairs = getattr(self, split)
            out[split] = None if pairs is None else \
                pairs.to(torch.int32 if small else torch.int64)
        return out

    @classmethod
    def from_state_dict(cls, state: Dict[str, object]) -> 'InteractionGraph':
        r"""The graph of :meth:`state_dict`."""
        try:
            return cls(state['num_users'], state['num_items'], state['train'],
                       state.get('valid'), state.get('test'),
                       name=state.get('name'), user_ids=state.get('user_ids'),
                       item_ids=state.get('item_ids'))
        except KeyError as e:
            raise ValueError(f"InteractionGraph.from_state_dict: missing "
                             f"entry {e}") from None

    def _dedup(self, split: str, pairs: Tensor) -> Tensor:
        keys = _keys(pairs, self.num_items)
        uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
        if uniq.numel() == keys.numel():
            # Sort by (user, item) for determinism and fast lookups.
            return torch.stack([uniq // self.num_items, uniq % self.num_items])
        warnings.warn(f"InteractionGraph: {keys.numel() - uniq.numel()} "
                      f"repeated (user, item) pairs in '{split}' were kept "
                      f"once")
        return torch.stack([uniq // self.num_items, uniq % self.num_items])

    def _check_disjoint(self, splits: Dict[str, Optional[Tensor]]) -> None:
        present = [(s, _keys(p, self.num_items)) for s, p in splits.items()
                   if p is not None and p.numel() > 0]
        for i in range(len(present)):
            for j in range(i + 1, len(present)):
                (a, ka), (b, kb) = present[i], present[j]
                common = torch.isin(ka, kb)
                if bool(common.any()):
                    k = int(ka[common][0])
                    raise ValueError(
                        f"InteractionGraph: {int(common.sum())} (user, item) "
                        f"pairs are in both '{a}' and '{b}' (e.g. user "
                        f"{k // self.num_items}, item {k % self.num_items})")

    # ------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    def split(self, name: str) -> Tensor:
        """The pairs of split :obj:`name` (:obj:`'train'`, :obj:`'valid'` or
        :obj:`'test'`); raises if the split is absent."""
        if name not in SPLITS:
            raise ValueError(f"unknown split '{name}' (expected one of "
                             f"{SPLITS})")
        pairs = getattr(self, name)
        if pairs is None:
            raise ValueError(f"{self!r} has no '{name}' split")
        return pairs

    def user_degree(self) -> Tensor:
        """Number of training items of every user, shape :obj:`[U]`."""
        return torch.bincount(self.train[0], minlength=self.num_users)

    def item_degree(self) -> Tensor:
        """Number of training users of every item, shape :obj:`[I]`."""
        return torch.bincount(self.train[1], minlength=self.num_items)

    def csr(self, split: str = 'train') -> Tuple[Tensor, Tensor]:
        r"""The items of every user in :obj:`split` as :obj:`(rowptr, col)`,
        items sorted ascending within each user."""
        key = f'csr_{split}'
        if key not in self._cache:
            pairs = self.split(split)  # already sorted by (user, item)
            counts = torch.bincount(pairs[0], minlength=self.num_users)
            rowptr = torch.zeros(self.num_users + 1, dtype=torch.int64)
            torch.cumsum(counts, 0, out=rowptr[1:])
            self._cache[key] = (rowptr, pairs[1].clone())
        return self._cache[key]  # type: ignore[return-value]

    @property
    def edge_index(self) -> Tensor:
        r"""Training edges of the homogeneous graph, both directions,
        shape :obj:`[2, 2E]` (items offset by :obj:`num_users`)."""
        if 'edge_index' not in self._cache:
            u, i = self.train[0], self.train[1] + self.num_users
            self._cache['edge_index'] = torch.stack(
                [torch.cat([u, i]), torch.cat([i, u])])
        return self._cache['edge_index']  # type: ignore[return-value]

    def norm_adj(self, dtype: torch.dtype = torch.float32,
                 device=None) -> Tensor:
        r"""The cached normalised training adjacency
        :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` of the homogeneous
        graph, an :obj:`[N, N]` :obj:`torch.sparse_csr` tensor with int64
        offsets, marked symmetric for :func:`pyg_recsys.ops.spmm`."""
        key = f'norm_adj_{dtype}_{device}'
        if key not in self._cache:
            self._cache[key] = normalized_adjacency(
                self.train, self.num_users, self.num_items, dtype=dtype,
                device=device, edge_index=self.edge_index)
        return self._cache[key]  # type: ignore[return-value]

    # ------------------------------------------------------------------
    def to_data(self):
        r"""The homogeneous :class:`torch_geometric.data.Data` view (training
        edges both ways; splits as :obj:`{split}_edge_label_index` with item
        ids offset by :obj:`num_users`)."""
        from torch_geometric.data import Data
        data = Data(edge_index=self.edge_index, num_nodes=self.num_nodes)
        data.num_users = self.num_users
        data.num_items = self.num_items
        for split in SPLITS[1:]:
            pairs = getattr(self, split)
            if pairs is not None:
                data[f'{split}_edge_label_index'] = torch.stack(
                    [pairs[0], pairs[1] + self.num_users])
        return data

    @classmethod
    def from_data(cls, data, num_users: Optional[int] = None,
                  name: Optional[str] = None) -> 'InteractionGraph':
        r"""Builds the graph from a homogeneous :class:`Data` whose first
        :obj:`num_users` nodes are users (edges in either or both
        directions; :obj:`{valid,test}_edge_label_index` become splits)."""
        num_users = int(num_users if num_users is not None else
                        data.num_users)
        num_items = int(data.num_nodes) - num_users

        def user_item(ei: Tensor) -> Tensor:
            src, dst = ei
            fwd = (src < num_users) & (dst >= num_users)
            bwd = (src >= num_users) & (dst < num_users)
            if bool((~(fwd | bwd)).any()):
                raise ValueError("InteractionGraph.from_data: found edges "
                                 "inside the user or item block")
            u = torch.where(fwd, src, dst)
            i = torch.where(fwd, dst, src) - num_users
            pairs = torch.unique(torch.stack([u, i]), dim=1)
            return pairs

        splits = {}
        for split in SPLITS[1:]:
            ei = data.get(f'{split}_edge_label_index')
            splits[split] = None if ei is None else user_item(ei)
        return cls(num_users, num_items, user_item(data.edge_index),
                   name=name, **splits)

    def to_hetero_data(self):
        r"""The :class:`torch_geometric.data.HeteroData` view with edge types
        :obj:`('user', 'to', 'item')` and :obj:`('item', 'rev_to', 'user')`;
        the splits are :obj:`{split}_edge_label_index` of the forward type."""
        from torch_geometric.data import HeteroData
        data = HeteroData()
        data['user'].num_nodes = self.num_users
        data['item'].num_nodes = self.num_items
        data['user', 'to', 'item'].edge_index = self.train
        data['item', 'rev_to', 'user'].edge_index = self.train.flip(0)
        for split in SPLITS[1:]:
            pairs = getattr(self, split)
            if pairs is not None:
                data['user', 'to', 'item'][f'{split}_edge_label_index'] = pairs
        return data

    @classmethod
    def from_hetero_data(cls, data, edge_type=('user', 'to', 'item'),
                         name: Optional[str] = None) -> 'InteractionGraph':
        r"""Builds the graph from a :class:`HeteroData` with the given
        user-to-item :obj:`edge_type`."""
        src, _, dst = edge_type
        store = data[edge_type]
        splits = {s: store.get(f'{s}_edge_label_index') for s in SPLITS[1:]}
        return cls(data[src].num_nodes, data[dst].num_nodes, store.edge_index,
                   name=name, **splits)

    def __repr__(self) -> str:
        parts = [f'num_users={self.num_users}', f'num_items={self.num_items}']
        for split in SPLITS:
            pairs = getattr(self, split)
            if pairs is not None:
                parts.append(f'{split}={pairs.size(1)}')
        name = f"'{self.name}', " if self.name else ''
        return f'{self.__class__.__name__}({name}{", ".join(parts)})'
