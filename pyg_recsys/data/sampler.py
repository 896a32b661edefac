r"""Vectorised BPR triple samplers."""
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.data.graph import InteractionGraph

SCHEMES = ('per_user', 'per_interaction')


class BPRSampler:
    r"""Samples :math:`(u, i, j)` triples for BPR training: :math:`i` a
    training item of :math:`u`, :math:`j` an item :math:`u` has not
    interacted with in training (drawn uniformly; training positives are
    rejected and redrawn, all in torch).

    Two schemes:

    * :obj:`'per_user'` (the LightGCN code's): draw users uniformly among the
      users with training items, then one of each user's items uniformly;
      an epoch has as many triples as there are training interactions;
    * :obj:`'per_interaction'`: every training interaction once per epoch,
      in random order.

    Args:
        graph (InteractionGraph): The graph whose training split is sampled.
        scheme (str, optional): :obj:`'per_user'` or :obj:`'per_interaction'`.
            (default: :obj:`'per_user'`)
        num_negatives (int, optional): Negatives per triple; with more than
            one, :obj:`neg` has shape :obj:`[B, num_negatives]`.
            (default: :obj:`1`)
        seed (int, optional): Seed of the sampler's own generator.
            (default: :obj:`0`)
        negative_items (torch.Tensor, optional): Draw negatives from these
            item ids only, e.g. the items with training interactions, so
            that items held out for cold-start evaluation are never pushed
            down in training. (default: :obj:`None`, all items)
        shared_negatives (bool, optional): :meth:`batches` draws
            :obj:`num_negatives` negatives per mini-batch, uniform over the
            pool and shared by all its triples (shape :obj:`[1, M]`),
            without rejecting anyone's positives. (default: :obj:`False`)

    With several negatives per triple, :meth:`batches` draws them batch by
    batch (hundreds per triple over an epoch would not fit in memory).
    """
    bitmap_cells = 1 << 26

    def __init__(self, graph: InteractionGraph, scheme: str = 'per_user',
                 num_negatives: int = 1, seed: int = 0,
                 negative_items: Optional[Tensor] = None,
                 shared_negatives: bool = False):
        if scheme not in SCHEMES:
            raise ValueError(f"BPRSampler: unknown scheme '{scheme}' "
                             f"(expected one of {SCHEMES})")
        if num_negatives < 1:
            raise ValueError(f"BPRSampler: num_negatives must be >= 1, got "
                             f"{num_negatives}")
        self.scheme = scheme
        self.num_negatives = num_negatives
        self.shared_negatives = bool(shared_negatives)
        self.num_users = graph.num_users
        self.num_items = graph.num_items
        self._bitmap = None  # built by positive_mask on small graphs
        self.generator = torch.Generator().manual_seed(seed)
        self.rowptr, self.col = graph.csr('train')
        deg = self.rowptr.diff()
        self.pool = None
        in_pool = deg
        if negative_items is not None:
            pool = torch.as_tensor(negative_items, dtype=torch.long).view(-1)
            pool = torch.unique(pool)
            if pool.numel() == 0 or int(pool[0]) < 0 or \
                    int(pool[-1]) >= graph.num_items:
                raise ValueError(f"BPRSampler: negative_items must be "
                                 f"non-empty item ids in "
                                 f"[0, {graph.num_items})")
            self.pool = pool
            member = torch.zeros(graph.num_items, dtype=torch.bool)
            member[pool] = True
            in_pool = torch.bincount(graph.train[0][member[graph.train[1]]],
                                     minlength=graph.num_users)
        size = graph.num_items if self.pool is None else self.pool.numel()
        full = (in_pool >= size).nonzero().view(-1)
        if full.numel() > 0:
            raise ValueError(f"BPRSampler: user {int(full[0])} has interacted "
                             f"with every item, so no negative exists")
        self.active_users = (deg > 0).nonzero().view(-1)
        self.degree = deg
        # (user, item) keys, sorted since the graph keeps pairs sorted.
        self.keys = graph.train[0] * graph.num_items + graph.train[1]
        self.num_interactions = self.keys.numel()

    def state_dict(self) -> dict:
        return {'generator': self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state['generator'])

    def _randint(self, high: Tensor, n: int) -> Tensor:
        # Uniform integers in [0, high) per entry, exact for high < 2**53.
        r = torch.rand(n, generator=self.generator, dtype=torch.float64)
        return (r * high.to(torch.float64)).to(torch.int64).clamp_(max=high - 1)

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        r"""Whether each :obj:`(users[k], items[k])` is a training pair."""
        query = users * self.num_items + items
        pos = torch.searchsorted(self.keys, query).clamp_(
            max=self.keys.numel() - 1)
        return self.keys[pos] == query

    def positive_mask(self, users: Tensor, items: Tensor) -> Tensor:
        r"""Whether :obj:`(users[b], items[m])` is a training pair, shape
        :obj:`[B, M]`: from a dense bitmap of the pairs up to
        :attr:`bitmap_cells` user-item cells (:math:`2^{26}`), else by
        binary search of the keys."""
        users, items = users.reshape(-1), items.reshape(-1)
        if self.num_users * self.num_items <= self.bitmap_cells:
            if self._bitmap is None:
                bitmap = torch.zeros(self.num_users * self.num_items,
                                     dtype=torch.bool)
                bitmap[self.keys] = True
                self._bitmap = bitmap.view(self.num_users, self.num_items)
            return self._bitmap.index_select(0, users).index_select(1, items)
        return self.is_positive(users.view(-1, 1), items.view(1, -1))

    def _draw(self, shape) -> Tensor:
        if self.pool is None:
            return torch.randint(self.num_items, shape,
                                 generator=self.generator)
        return self.pool[torch.randint(self.pool.numel(), shape,
                                       generator=self.generator)]

    def negatives(self, users: Tensor) -> Tensor:
        r"""One uniform non-positive item per entry of :obj:`users` (any
        shape)."""
        flat = users.reshape(-1)
        neg = self._draw(flat.shape)
        todo = self.is_positive(flat, neg).nonzero().view(-1)
        while todo.numel() > 0:
            neg[todo] = self._draw(todo.shape)
            todo = todo[self.is_positive(flat[todo], neg[todo])]
        return neg.view(users.shape)

    def positives(self, num_samples: Optional[int] = None
                  ) -> Tuple[Tensor, Tensor]:
        r"""One epoch's worth (or :obj:`num_samples`) of training pairs
        :obj:`(users, pos)` in the order of the scheme."""
        n = self.num_interactions if num_samples is None else num_samples
        if self.scheme == 'per_user':
            pick = torch.randint(self.active_users.numel(), (n, ),
                                 generator=self.generator)
            users = self.active_users[pick]
            offset = self._randint(self.degree[users], n)
            pos = self.col[self.rowptr[users] + offset]
        else:
            rounds = -(-n // self.num_interactions)
            perm = torch.cat([
                torch.randperm(self.num_interactions, generator=self.generator)
                for _ in range(rounds)
            ])[:n]
            key = self.keys[perm]
            users, pos = key // self.num_items, key % self.num_items
        return users, pos

    def _negatives_of(self, users: Tensor) -> Tensor:
        if self.shared_negatives:
            return self._draw((1, self.num_negatives))
        if self.num_negatives == 1:
            return self.negatives(users)
        return self.negatives(users.view(-1, 1).expand(
            users.numel(), self.num_negatives))

    def sample(self, num_samples: Optional[int] = None
               ) -> Tuple[Tensor, Tensor, Tensor]:
        r"""One epoch's worth (or :obj:`num_samples`) of triples
        :obj:`(users, pos, neg)` in random order (:obj:`neg` of shape
        :obj:`[n]`, :obj:`[n, M]`, or :obj:`[1, M]` when shared)."""
        users, pos = self.positives(num_samples)
        return users, pos, self._negatives_of(users)

    def batches(self, batch_size: int, num_samples: Optional[int] = None
                ) -> Iterator[Tuple[Tensor, Tensor, Tensor]]:
        r"""Yields one epoch of triples in mini-batches of
        :obj:`batch_size`."""
        if batch_size <= 0:
            raise ValueError(f"BPRSampler: batch_size must be positive, got "
                             f"{batch_size}")
        if self.num_negatives == 1 and not self.shared_negatives:
            users, pos, neg = self.sample(num_samples)
            for start in range(0, users.numel(), batch_size):
                end = start + batch_size
                yield users[start:end], pos[start:end], neg[start:end]
            return
        users, pos = self.positives(num_samples)
        for start in range(0, users.numel(), batch_size):
            end = start + batch_size
            yield users[start:end], pos[start:end], \
                self._negatives_of(users[start:end])

    def __len__(self) -> int:
        return self.num_interactions

    def __repr__(self) -> str:
        shared = ', shared_negatives=True' if self.shared_negatives else ''
        return (f"{self.__class__.__name__}(scheme='{self.scheme}', "
                f"num_negatives={self.num_negatives}{shared})")
