r"""Random interaction graphs for Bayesian graph recommenders.

Two generative models of the user-item graph, each fitted to the observed
training interactions and sampled as often as a Bayesian recommender (see
:class:`pyg_recsys.nn.models.BayesianRecommender`) needs a new graph:

* :class:`NodeCopying`, the node copying model that BGCF (Sun et al., `"A
  Framework for Recommending Accurate and Diverse Items Using Bayesian Graph
  Convolutional Neural Networks" <https://doi.org/10.1145/3394486.3403254>`_,
  KDD 2020) uses: a user's items are replaced by those of a similar user;
* :class:`PECO`, a preference-, concurrence- and degree-aware generator after
  `"Preference and Concurrence Aware Bayesian Graph Neural Networks for
  Recommender Systems" <https://arxiv.org/abs/2312.11486>`_ (Gu, Hu and
  Zhang): a user's items are redrawn from a mixture of what similar users
  chose (preference) and what co-occurs with the user's own items
  (concurrence), damped by item degree, keeping the user's degree.

Every :meth:`sample` returns the edge set :obj:`(users, items)` of one graph
as two LongTensors sorted by user, then item, with no repeated pair; the same
seed gives the same graph. :func:`pyg_recsys.data.normalized_adjacency` (or a
generator's :meth:`sample_adj`) turns it into the adjacency the models use.

Neighbour lists are computed in row blocks (sparse-dense products of the
interaction matrix), so no dense users-by-users or items-by-items matrix is
ever held; only the top-:math:`k` lists are kept.
"""
import math
import warnings
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from pyg_recsys.data.graph import InteractionGraph, normalized_adjacency

Interactions = Union[InteractionGraph, Tensor]
WEIGHTINGS = ('uniform', 'similarity')

# Entries of a row block of similarity scores held at once (float64).
_BLOCK_ENTRIES = 1 << 22
# (user, item, value) triples built at once while assembling PECO's rows.
_CHUNK_TRIPLES = 1 << 23


def _as_pairs(who: str, interactions: Interactions,
              num_users: Optional[int], num_items: Optional[int]
              ) -> Tuple[Tensor, int, int]:
    r"""Checked, distinct, sorted training pairs :obj:`[2, E]` and the
    numbers of users and items."""
    if isinstance(interactions, InteractionGraph):
        for name, given, actual in (('num_users', num_users,
                                     interactions.num_users),
                                    ('num_items', num_items,
                                     interactions.num_items)):
            if given is not None and int(given) != actual:
                raise ValueError(f"{who}: {name}={given} disagrees with the "
                                 f"graph's {actual}")
        return (interactions.train, interactions.num_users,
                interactions.num_items)
    pairs = torch.as_tensor(interactions)
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"{who}: the interactions must have shape "
                         f"[2, num_interactions] (user row, item row), got "
                         f"{tuple(pairs.shape)}")
    if pairs.is_floating_point() or pairs.is_complex() \
            or pairs.dtype == torch.bool:
        raise TypeError(f"{who}: the interactions must hold integer ids, got "
                        f"{pairs.dtype}")
    if pairs.size(1) == 0:
        raise ValueError(f"{who}: the interaction graph is empty")
    pairs = pairs.to(torch.int64).cpu()
    sizes = []
    for row, what, n in ((0, 'user', num_users), (1, 'item', num_items)):
        lo, hi = int(pairs[row].min()), int(pairs[row].max())
        if lo < 0:
            raise ValueError(f"{who}: negative {what} id ({lo})")
        n = hi + 1 if n is None else int(n)
        if n <= 0 or hi >= n:
            raise ValueError(f"{who}: {what} id {hi} is out of range for "
                             f"num_{what}s={n}")
        sizes.append(n)
    num_users, num_items = sizes
    keys = torch.unique(pairs[0] * num_items + pairs[1], sorted=True)
    return (torch.stack([keys // num_items, keys % num_items]), num_users,
            num_items)


def _csr(pairs: Tensor, num_rows: int) -> Tuple[Tensor, Tensor]:
    r""":obj:`(rowptr, col)` of pairs sorted by row."""
    rowptr = torch.zeros(num_rows + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(pairs[0], minlength=num_rows), 0,
                 out=rowptr[1:])
    return rowptr, pairs[1]


def _segments(rowptr: Tensor, rows: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Positions of the CSR segments of :obj:`rows`, concatenated in the
    order of :obj:`rows`, and for each position the index into :obj:`rows`
    it came from."""
    start = rowptr[rows]
    count = rowptr[rows + 1] - start
    owner = torch.repeat_interleave(torch.arange(rows.numel()), count)
    first = torch.cumsum(count, 0) - count
    pos = torch.arange(int(count.sum())) - first[owner] + start[owner]
    return pos, owner


def _topk_rows(score: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    r"""Per row of :obj:`score` (:obj:`[B, N]`), the columns of the
    :math:`\min(k, N)` largest entries in ascending column order, ties at
    the threshold going to the lower column, and their scores."""
    k = min(k, score.size(1))
    thresh = score.topk(k, dim=1).values[:, -1:]
    above = score > thresh
    tie = score == thresh
    need = k - above.sum(1, keepdim=True)
    chosen = above | (tie & (torch.cumsum(tie, 1) <= need))
    rows, cols = chosen.nonzero(as_tuple=True)
    cols = cols.view(-1, k)
    return cols, score.gather(1, cols)


def _block_size(num_rows: int, num_cols: int,
                batch_size: Optional[int]) -> int:
    if batch_size is not None:
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        return int(batch_size)
    return max(1, min(num_rows, _BLOCK_ENTRIES // max(num_rows, num_cols, 1)))


def _overlap_dense(pairs: Tensor, rowptr: Tensor, col: Tensor,
                   num_rows: int, num_cols: int, k: int, measure: str,
                   batch_size: Optional[int]) -> Tuple[Tensor, Tensor]:
    r"""Overlaps from :math:`\mathbf{X}\mathbf{X}_B^{\top}` for blocks
    :math:`B` of rows (sparse times dense), top-:math:`k` on dense blocks."""
    deg = rowptr.diff().to(torch.float64)
    with warnings.catch_warnings():  # 'sparse CSR is in beta'
        warnings.simplefilter('ignore', UserWarning)
        x = torch.sparse_csr_tensor(rowptr, col, torch.ones(col.numel()),
                                    (num_rows, num_cols),
                                    check_invariants=False)
    step = _block_size(num_rows, num_cols, batch_size)
    index = torch.empty(num_rows, k, dtype=torch.int64)
    score = torch.empty(num_rows, k, dtype=torch.float64)
    for lo in range(0, num_rows, step):
        hi = min(num_rows, lo + step)
        block = torch.zeros(hi - lo, num_cols)
        a, b = int(rowptr[lo]), int(rowptr[hi])
        block[pairs[0, a:b] - lo, col[a:b]] = 1.0
        # Counts are exact in float32 below 2**24 shared columns.
        inter = (x @ block.t().contiguous()).t().to(torch.float64)
        if measure == 'jaccard':
            union = deg[lo:hi, None] + deg[None, :] - inter
            sim = inter / union.clamp(min=1.0)
        else:
            sim = inter
        sim[inter == 0] = -math.inf
        sim[torch.arange(hi - lo), torch.arange(lo, hi)] = -math.inf
        index[lo:hi], score[lo:hi] = _topk_rows(sim, k)
    return index, score


def _overlap_sparse(pairs: Tensor, rowptr: Tensor, col: Tensor,
                    num_rows: int, num_cols: int, k: int,
                    measure: str) -> Tuple[Tensor, Tensor]:
    r"""Overlaps as the non-zeros of :math:`\mathbf{X}\mathbf{X}^{\top}`,
    from the two-hop expansion row -> column -> row in chunks of rows, and
    top-:math:`k` by sorting each row's non-zeros."""
    deg = rowptr.diff().to(torch.float64)
    order = torch.argsort(col * num_rows + pairs[0])
    colptr, colrow = _csr(torch.stack([col[order], pairs[0, order]]),
                          num_cols)
    expand = torch.zeros(num_rows, dtype=torch.int64).index_add_(
        0, pairs[0], colptr.diff()[col])
    ends = torch.cumsum(expand, 0)
    index = torch.arange(num_rows).view(-1, 1).repeat(1, k)
    score = torch.full((num_rows, k), -math.inf, dtype=torch.float64)
    lo = 0
    while lo < num_rows:
        base = int(ends[lo - 1]) if lo > 0 else 0
        hi = int(torch.searchsorted(ends, base + _CHUNK_TRIPLES, right=True))
        hi = min(num_rows, max(hi, lo + 1))
        pos, owner = _segments(rowptr, torch.arange(lo, hi))
        pos2, owner2 = _segments(colptr, col[pos])
        key = (owner[owner2] + lo) * num_rows + colrow[pos2]
        key, inter = torch.unique(key, sorted=True, return_counts=True)
        ra, rb = key // num_rows, key % num_rows
        keep = ra != rb
        ra, rb, inter = ra[keep], rb[keep], inter[keep].to(torch.float64)
        sim = inter / (deg[ra] + deg[rb] - inter) if measure == 'jaccard' \
            else inter
        # By row, then similarity (descending), then id: stable sorts of
        # entries already sorted by (row, id).
        o = torch.argsort(sim, descending=True, stable=True)
        o = o[torch.argsort(ra[o], stable=True)]
        ra, rb, sim = ra[o], rb[o], sim[o]
        first = torch.searchsorted(ra, ra)
        rank = torch.arange(ra.numel()) - first
        top = rank < k
        index[ra[top], rank[top]] = rb[top]
        score[ra[top], rank[top]] = sim[top]
        lo = hi
    return index, score


def overlap_neighbors(pairs: Tensor, num_rows: int, num_cols: int, k: int,
                      measure: str = 'jaccard',
                      batch_size: Optional[int] = None,
                      method: str = 'auto') -> Tuple[Tensor, Tensor]:
    r"""The :math:`k` rows most similar to every row of the binary matrix
    :math:`\mathbf{X} \in \{0, 1\}^{R \times C}` whose ones are
    :obj:`pairs`, by the overlap of their column sets:
    :math:`|\mathcal{N}_a \cap \mathcal{N}_b|` (:obj:`'count'`) or
    :math:`|\mathcal{N}_a \cap \mathcal{N}_b| / |\mathcal{N}_a \cup
    \mathcal{N}_b|` (:obj:`'jaccard'`). A row is never its own neighbour,
    rows sharing no column are not neighbours, and ties go to the lower row
    id.

    Two exact methods: :obj:`'sparse'` finds the non-zeros of
    :math:`\mathbf{X}\mathbf{X}^{\top}` by the two-hop expansion
    (:math:`\sum_c d_c^2` entries, in chunks); :obj:`'dense'` computes
    :math:`\mathbf{X}\mathbf{X}_B^{\top}` for blocks :math:`B` of rows
    (sparse times dense; memory :math:`O(|B| \cdot \max(R, C))`), which
    is faster when most rows overlap. :obj:`'auto'` takes the sparse one
    when the expansion is below :math:`R^2 / 4`.

    Args:
        pairs (torch.Tensor): Distinct :obj:`(row, column)` ids, shape
            :obj:`[2, E]`, sorted by row.
        num_rows (int): :math:`R`.
        num_cols (int): :math:`C`.
        k (int): Neighbours per row.
        measure (str, optional): :obj:`'jaccard'` or :obj:`'count'`.
            (default: :obj:`'jaccard'`)
        batch_size (int, optional): Rows per dense block. (default: as many
            as fit :math:`2^{22}` scores)
        method (str, optional): :obj:`'auto'`, :obj:`'sparse'` or
            :obj:`'dense'`. (default: :obj:`'auto'`)

    Returns:
        (torch.Tensor, torch.Tensor): neighbour ids :obj:`[R, min(k, R)]`
        and their float64 scores; :obj:`-inf` marks a slot without a
        neighbour (its id is then meaningless, but a valid row id).
    """
    if measure not in ('jaccard', 'count'):
        raise ValueError(f"overlap_neighbors: measure must be 'jaccard' or "
                         f"'count', got '{measure}'")
    if method not in ('auto', 'sparse', 'dense'):
        raise ValueError(f"overlap_neighbors: method must be 'auto', "
                         f"'sparse' or 'dense', got '{method}'")
    if batch_size is not None:
        _block_size(num_rows, num_cols, batch_size)  # checks it
    rowptr, col = _csr(pairs, num_rows)
    k = min(k, num_rows)
    if method == 'auto':
        col_deg = torch.bincount(col, minlength=num_cols)
        expansion = int((col_deg * col_deg).sum())
        method = 'sparse' if 4 * expansion < num_rows * num_rows else 'dense'
    if method == 'sparse':
        return _overlap_sparse(pairs, rowptr, col, num_rows, num_cols, k,
                               measure)
    return _overlap_dense(pairs, rowptr, col, num_rows, num_cols, k, measure,
                          batch_size)


def embedding_neighbors(emb: Tensor, k: int,
                        batch_size: Optional[int] = None
                        ) -> Tuple[Tensor, Tensor]:
    r"""The :math:`k` rows of :obj:`emb` with the highest cosine similarity
    to every row (itself excluded; ties to the lower id), computed in row
    blocks.

    Args:
        emb (torch.Tensor): Embeddings, shape :obj:`[R, d]` (e.g. the user
            table of a trained base model).
        k (int): Neighbours per row.
        batch_size (int, optional): Rows per block.

    Returns:
        (torch.Tensor, torch.Tensor): ids :obj:`[R, min(k, R - 1)]` and
        float64 cosine similarities.
    """
    emb = emb.detach().to('cpu', torch.float64)
    unit = emb / emb.norm(dim=1, keepdim=True).clamp(min=1e-300)
    n = unit.size(0)
    step = _block_size(n, n, batch_size)
    kk = min(k, n - 1)
    index = torch.empty(n, kk, dtype=torch.int64)
    score = torch.empty(n, kk, dtype=torch.float64)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        sim = unit[lo:hi] @ unit.t()
        sim[torch.arange(hi - lo), torch.arange(lo, hi)] = -math.inf
        index[lo:hi], score[lo:hi] = _topk_rows(sim, kk)
    return index, score


def _similar_users(who: str, pairs: Tensor, num_users: int, num_items: int,
                   k: int, similarity, batch_size: Optional[int]
                   ) -> Tuple[Tensor, Tensor]:
    if isinstance(similarity, str):
        if similarity != 'jaccard':
            raise ValueError(f"{who}: similarity must be 'jaccard' or a "
                             f"tensor of user embeddings [num_users, d], got "
                             f"'{similarity}'")
        return overlap_neighbors(pairs, num_users, num_items, k, 'jaccard',
                                 batch_size)
    emb = torch.as_tensor(similarity)
    if emb.dim() != 2 or emb.size(0) != num_users:
        raise ValueError(f"{who}: user embeddings must have shape "
                         f"[num_users={num_users}, d], got "
                         f"{tuple(emb.shape)}")
    if not emb.is_floating_point() or not bool(torch.isfinite(emb).all()):
        raise ValueError(f"{who}: user embeddings must be finite floats")
    if num_users < 2:
        raise ValueError(f"{who}: needs at least two users to find similar "
                         f"ones")
    return embedding_neighbors(emb, k, batch_size)


def _weights(score: Tensor, weighting: str) -> Tensor:
    r"""Row-stochastic weights over the valid neighbours (all-zero rows for
    users without any)."""
    if weighting == 'uniform':
        w = torch.isfinite(score).to(torch.float64)
    else:
        w = torch.where(torch.isfinite(score), score,
                        torch.zeros_like(score)).clamp(min=0.0)
    total = w.sum(1, keepdim=True)
    return torch.where(total > 0, w / total.clamp(min=1e-300), w)


def _generator(seed: Optional[int],
               generator: Optional[torch.Generator]) -> torch.Generator:
    if generator is not None:
        if seed is not None:
            raise ValueError("pass either seed or generator, not both")
        return generator
    if seed is None:  # follow the global RNG (torch.manual_seed)
        seed = int(torch.randint(0, 2**62, (1,)))
    return torch.Generator().manual_seed(int(seed))


def _check_unit(who: str, name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{who}: {name} must lie in [0, 1], got {value}")
    return value


# BGCF's epsilon: the probability that a user KEEPS its own items.
BGCF_EPSILON = 0.01


def _keep_replace(who: str, epsilon: Optional[float],
                  replace_prob: Optional[float]) -> Tuple[float, float]:
    r"""BGCF's :obj:`epsilon` (the probability that a user keeps its items)
    and :obj:`replace_prob` (that they are replaced, :math:`1 -
    \epsilon`), from whichever one is given; exactly one may be (neither:
    BGCF's :math:`\epsilon = 0.01`)."""
    if epsilon is not None and replace_prob is not None:
        raise ValueError(f"{who}: pass epsilon (BGCF's probability of "
                         f"keeping a user's items) or replace_prob (of "
                         f"replacing them), not both")
    if replace_prob is not None:
        replace = _check_unit(who, 'replace_prob', replace_prob)
        return 1.0 - replace, replace
    keep = _check_unit(who, 'epsilon',
                       BGCF_EPSILON if epsilon is None else epsilon)
    return keep, 1.0 - keep


def _check_k(who: str, name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got "
                         f"{value}")
    return int(value)


def sample_rows_without_replacement(rowptr: Tensor, prob: Tensor,
                                    rows: Tensor, take: Tensor,
                                    generator: torch.Generator
                                    ) -> Tuple[Tensor, Tensor]:
    r"""For every :obj:`rows[r]` of the CSR distribution :obj:`(rowptr,
    prob)`, :obj:`take[r]` distinct positions drawn one after another, each
    with probability proportional to :obj:`prob` among those not yet drawn
    (successive sampling), all rows at once by the Gumbel-top-:math:`k`
    trick: the positions with the largest :math:`\log p + G`,
    :math:`G \sim \mathrm{Gumbel}(0, 1)`.

    Args:
        rowptr (torch.Tensor): Row offsets of the distribution.
        prob (torch.Tensor): Positive weights per entry (need not sum to 1).
        rows (torch.Tensor): Rows to sample.
        take (torch.Tensor): Draws per row, at most the row's length.
        generator (torch.Generator): Source of randomness.

    Returns:
        (torch.Tensor, torch.Tensor): the index into :obj:`rows` and the
        drawn entry position of every draw, grouped by row.
    """
    pos, owner = _segments(rowptr, rows)
    if pos.numel() == 0:
        return owner, pos
    u = torch.rand(pos.numel(), generator=generator, dtype=torch.float64)
    key = prob[pos].to(torch.float64).log() - torch.log(-torch.log(u))
    order = torch.argsort(key, descending=True, stable=True)
    order = order[torch.argsort(owner[order], stable=True)]
    owner, pos = owner[order], pos[order]
    first = torch.cumsum(rowptr[rows + 1] - rowptr[rows], 0)
    first = first - (rowptr[rows + 1] - rowptr[rows])
    rank = torch.arange(pos.numel()) - first[owner]
    keep = rank < take[owner]
    return owner[keep], pos[keep]


def _sorted_edges(users: Tensor, items: Tensor,
                  num_items: int) -> Tuple[Tensor, Tensor]:
    keys = torch.sort(users * num_items + items).values
    return keys // num_items, keys % num_items


class _Generator:
    r"""What both generators share: the training graph and its CSR."""
    def __init__(self, who: str, interactions: Interactions,
                 num_users: Optional[int], num_items: Optional[int]):
        self.pairs, self.num_users, self.num_items = _as_pairs(
            who, interactions, num_users, num_items)
        self.rowptr, self.col = _csr(self.pairs, self.num_users)
        self.user_degree = self.rowptr.diff()
        self.item_degree = torch.bincount(self.pairs[1],
                                          minlength=self.num_items)

    @property
    def num_edges(self) -> int:
        return self.pairs.size(1)

    def sample(self, seed: Optional[int] = None,
               generator: Optional[torch.Generator] = None
               ) -> Tuple[Tensor, Tensor]:
        r"""One sampled graph.

        Args:
            seed (int, optional): Seed of a fresh generator (default: drawn
                from the global torch RNG).
            generator (torch.Generator, optional): Generator to draw from
                instead.

        Returns:
            (torch.Tensor, torch.Tensor): :obj:`users` and :obj:`items` of
            the sampled interactions, sorted by user, then item.
        """
        return self._draw(_generator(seed, generator))

    def _draw(self, g: torch.Generator) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _similar_users(self, who: str, top_k: int, similarity,
                       weighting: str, batch_size: Optional[int],
                       cap: Optional[Tensor] = None
                       ) -> Tuple[Tensor, Tensor]:
        r"""Sets :obj:`weighting` and :obj:`similarity` and returns the
        :obj:`top_k` most similar users of every user with their weights
        :math:`w(u, \cdot)`; with :obj:`cap`, only the :obj:`cap[u]` most
        similar of user :math:`u`'s (ties to the lower id) keep a weight."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"{who}: weighting must be one of {WEIGHTINGS}, "
                             f"got '{weighting}'")
        self.weighting = weighting
        self.similarity = similarity if isinstance(similarity, str) \
            else 'embedding'
        index, score = _similar_users(who, self.pairs, self.num_users,
                                      self.num_items, top_k, similarity,
                                      batch_size)
        if cap is not None:  # a stable sort keeps lower ids first in ties
            score, order = torch.sort(score, dim=1, descending=True,
                                      stable=True)
            index = index.gather(1, order)
            rank = torch.arange(index.size(1)).unsqueeze(0)
            score = score.masked_fill(rank >= cap.unsqueeze(1), -math.inf)
        return index, _weights(score, weighting)

    def sample_adj(self, seed: Optional[int] = None,
                   generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float32,
                   device=None) -> Tensor:
        r"""The normalised adjacency (as
        :func:`pyg_recsys.data.normalized_adjacency`) of one sampled graph."""
        users, items = self.sample(seed, generator)
        return normalized_adjacency(torch.stack([users, items]),
                                    self.num_users, self.num_items,
                                    dtype=dtype, device=device)


class NodeCopying(_Generator):
    r"""The node copying graph generator of BGCF, from the `"A Framework for
    Recommending Accurate and Diverse Items Using Bayesian Graph
    Convolutional Neural Networks" <https://doi.org/10.1145/3394486.3403254>`_
    paper (Sun et al., KDD 2020), after the node copying model of Pal et
    al.

    Every user :math:`u` independently keeps its observed items with
    probability :math:`\epsilon` (BGCF's convention), or else takes over the
    items of a user :math:`\zeta_u` drawn from its most similar users:

    .. math::
        \mathcal{N}'(u) = \begin{cases} \mathcal{N}(u) & \text{with
        probability } \epsilon, \\ \mathcal{N}(\zeta_u) &
        \text{otherwise,} \quad q(\zeta_u = v) \propto w(u, v),\ v \in
        \mathcal{S}(u), \end{cases}

    so the probability that :math:`(u, i)` is in the sampled graph is
    :math:`\epsilon\,[i \in \mathcal{N}(u)] + (1 - \epsilon) \sum_{v}
    q(v \mid u)\,[i \in \mathcal{N}(v)]`. Items' neighbourhoods follow from
    the users' (only user nodes are copied, as in BGCF).

    As the released BGCF preprocessing does (MindSpore model zoo,
    :obj:`research/gnn/bgcf`): :math:`\epsilon = 0.01`, so 99% of the users
    copy; the candidates :math:`\mathcal{S}(u)` are the :math:`\min(d_u,
    k)` users with the largest Jaccard similarity of training item sets
    (:math:`k = 10`), drawn uniformly. Choices where that code leaves room:

    * ties go to the lower user id; users sharing no item are never
      candidates (BGCF's code can pad the list with such users when fewer
      than :math:`\min(d_u, k)` share an item), and a user without any
      candidate keeps its items;
    * :math:`w(u, v)`: uniform (:obj:`weighting='uniform'`, BGCF) or the
      similarity clipped at 0 (:obj:`'similarity'`).

    :obj:`replace_prob` gives the probability of copying instead of
    :obj:`epsilon` (:obj:`replace_prob = 1 - epsilon`; e.g.
    :obj:`replace_prob=0.1` for the Bayesian LightGCN variant, which sees
    only sampled graphs).

    Args:
        interactions (InteractionGraph or torch.Tensor): The training graph
            or its :obj:`[2, E]` :obj:`(user, item)` pairs.
        num_users (int, optional): Users, for a pair tensor (default: the
            largest id + 1).
        num_items (int, optional): Items, likewise.
        epsilon (float, optional): BGCF's :math:`\epsilon`, the probability
            that a user keeps its own items. (default: :obj:`0.01`)
        top_k (int, optional): :math:`k`, the most candidate users per user
            (a user of degree :math:`d_u` has at most :math:`d_u`).
            (default: :obj:`10`)
        similarity (str or torch.Tensor, optional): :obj:`'jaccard'` (of the
            training item sets) or user embeddings :obj:`[U, d]` (e.g. of a
            trained base model; cosine similarity). (default:
            :obj:`'jaccard'`)
        weighting (str, optional): :obj:`'uniform'` or :obj:`'similarity'`.
            (default: :obj:`'uniform'`)
        batch_size (int, optional): Users per block of the similarity
            computation. (default: automatic)
        replace_prob (float, optional): The probability that a user's items
            are replaced, given instead of :obj:`epsilon`.
    """
    def __init__(self, interactions: Interactions,
                 num_users: Optional[int] = None,
                 num_items: Optional[int] = None,
                 epsilon: Optional[float] = None, top_k: int = 10,
                 similarity: Union[str, Tensor] = 'jaccard',
                 weighting: str = 'uniform',
                 batch_size: Optional[int] = None,
                 replace_prob: Optional[float] = None):
        who = self.__class__.__name__
        super().__init__(who, interactions, num_users, num_items)
        self.epsilon, self.replace_prob = _keep_replace(who, epsilon,
                                                         replace_prob)
        self.top_k = _check_k(who, 'top_k', top_k)
        # BGCF's cap: at most min(d_u, k) candidates, the most similar.
        self.candidates, self.probs = self._similar_users(
            who, self.top_k, similarity, weighting, batch_size,
            cap=self.user_degree.clamp(max=self.top_k))
        self.can_copy = self.probs.sum(1) > 0

    def copy_distribution(self) -> Tuple[Tensor, Tensor]:
        r"""The candidates :math:`\mathcal{S}_k(u)` of every user,
        :obj:`[U, k]`, and :math:`q(\zeta_u = v)`, float64 rows summing to 1
        (to 0 for users that cannot copy)."""
        return self.candidates, self.probs

    def _draw(self, g: torch.Generator) -> Tuple[Tensor, Tensor]:
        n = self.num_users
        copy = torch.rand(n, generator=g, dtype=torch.float64) \
            < self.replace_prob
        copy &= self.can_copy
        probs = torch.where(self.can_copy[:, None], self.probs,
                            torch.ones_like(self.probs))
        pick = torch.multinomial(probs, 1, generator=g).view(-1)
        source = torch.where(copy, self.candidates.gather(
            1, pick[:, None]).view(-1), torch.arange(n))
        pos, owner = _segments(self.rowptr, source)
        # Sources' items are sorted, so the edges come out sorted.
        return owner, self.col[pos]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, epsilon={self.epsilon}, '
                f'top_k={self.top_k}, similarity={self.similarity}, '
                f'weighting={self.weighting})')


class PECO(_Generator):
    r"""A preference- and concurrence-aware bipartite graph generator after
    the PECO model of the `"Preference and Concurrence Aware Bayesian Graph
    Neural Networks for Recommender Systems"
    <https://arxiv.org/abs/2312.11486>`_ paper (Gu, Hu and Zhang), a
    replacement for BGCF's node copying (:class:`NodeCopying`).

    Every user :math:`u` independently keeps its observed items, or with
    probability :math:`\epsilon` gets :math:`\min(d_u, |\mathcal{C}(u)|)`
    new distinct items drawn one after another (without replacement) from

    .. math::
        p(i \mid u) \propto \Big[(1 - \alpha)\, \underbrace{\sum_{v \in
        \mathcal{S}_k(u)} w(u, v) \frac{[i \in \mathcal{N}(v)]}{d_v}}_
        {\text{user preference}} + \alpha\, \underbrace{\frac{1}{d_u}
        \sum_{j \in \mathcal{N}(u)} \frac{c_{ji}\,[i \in \mathcal{T}_m(j)]}
        {\sum_{l \in \mathcal{T}_m(j)} c_{jl}}}_{\text{item concurrence}}
        \Big]\, d_i^{-\beta},

    where :math:`w(u, \cdot)` are the normalised similarities of the
    :math:`k` users most similar to :math:`u`, :math:`c_{ji} =
    |\mathcal{N}(j) \cap \mathcal{N}(i)|` counts the users who chose both
    items, :math:`\mathcal{T}_m(j)` are the :math:`m` items co-occurring
    most often with :math:`j`, and :math:`d` are training degrees. The
    candidates :math:`\mathcal{C}(u)` are the items with
    :math:`p(i \mid u) > 0`. The three parts of the paper's design are the
    user-preference term, the item-concurrence term with weight
    :math:`\alpha` (the data-set-dependent knob) and the node degrees: the
    user's degree is kept, and item degrees damp popular items.

    Choices made here (document them when reporting results):

    * only the section titles and abstract of the paper could be consulted
      while writing this class, so the formula above is this package's
      reading of its three ingredients, not a transcription;
    * preference and concurrence use top-:math:`k` / top-:math:`m` sparse
      neighbour lists (no dense users x users or items x items matrix);
      user similarity is Jaccard of item sets or cosine of given user
      embeddings, weighted by similarity (clipped at 0);
    * a user missing one term (no similar user) uses the other, renormalised;
      a user without any candidate keeps its items;
    * :math:`\epsilon` is, as in :class:`NodeCopying` and BGCF, the
      probability that a user keeps its items (default :math:`0.01`), so
      that both generators perturb the same share of users.

    Args:
        interactions (InteractionGraph or torch.Tensor): The training graph
            or its :obj:`[2, E]` :obj:`(user, item)` pairs.
        num_users (int, optional): Users, for a pair tensor (default: the
            largest id + 1).
        num_items (int, optional): Items, likewise.
        alpha (float, optional): Weight :math:`\alpha \in [0, 1]` of item
            concurrence against user preference. (default: :obj:`0.5`)
        beta (float, optional): Item-degree exponent :math:`\beta \geq 0`.
            (default: :obj:`0.5`)
        epsilon (float, optional): BGCF's :math:`\epsilon`, the probability
            that a user keeps its own items. (default: :obj:`0.01`)
        user_top_k (int, optional): :math:`k`. (default: :obj:`10`)
        item_top_k (int, optional): :math:`m`. (default: :obj:`10`)
        similarity (str or torch.Tensor, optional): :obj:`'jaccard'` or user
            embeddings :obj:`[U, d]`. (default: :obj:`'jaccard'`)
        weighting (str, optional): :math:`w`: :obj:`'similarity'` or
            :obj:`'uniform'`. (default: :obj:`'similarity'`)
        batch_size (int, optional): Rows per block of the neighbour-list
            computations. (default: automatic)
        replace_prob (float, optional): The probability that a user's items
            are redrawn, given instead of :obj:`epsilon`.
    """
    def __init__(self, interactions: Interactions,
                 num_users: Optional[int] = None,
                 num_items: Optional[int] = None, alpha: float = 0.5,
                 beta: float = 0.5, epsilon: Optional[float] = None,
                 user_top_k: int = 10, item_top_k: int = 10,
                 similarity: Union[str, Tensor] = 'jaccard',
                 weighting: str = 'similarity',
                 batch_size: Optional[int] = None,
                 replace_prob: Optional[float] = None):
        who = self.__class__.__name__
        super().__init__(who, interactions, num_users, num_items)
        self.alpha = _check_unit(who, 'alpha', alpha)
        self.epsilon, self.replace_prob = _keep_replace(who, epsilon,
                                                         replace_prob)
        beta = float(beta)
        if not math.isfinite(beta) or beta < 0:
            raise ValueError(f"{who}: beta must be a finite number >= 0, got "
                             f"{beta}")
        self.beta = beta
        self.user_top_k = _check_k(who, 'user_top_k', user_top_k)
        self.item_top_k = _check_k(who, 'item_top_k', item_top_k)
        self.user_neighbors, self.user_weights = self._similar_users(
            who, self.user_top_k, similarity, weighting, batch_size)
        item_pairs = torch.stack([self.pairs[1], self.pairs[0]])
        order = torch.argsort(item_pairs[0] * self.num_users + item_pairs[1])
        index, count = overlap_neighbors(item_pairs[:, order], self.num_items,
                                         self.num_users, self.item_top_k,
                                         'count', batch_size)
        self.item_neighbors = index
        self.item_weights = _weights(count, 'similarity')
        self.prob_rowptr, self.prob_col, self.prob = self._assemble()

    # ------------------------------------------------------------------
    def _triples(self, lo: int, hi: int) -> Tuple[Tensor, Tensor]:
        r"""Keys :obj:`u * I + i` and unnormalised mixture values of users
        :obj:`lo..hi-1` (repeated keys to be summed)."""
        deg_u = self.user_degree.to(torch.float64)
        # Preference: (u, v, w) -> (u, i, (1 - alpha) w / d_v), i in N(v).
        w = self.user_weights[lo:hi]
        u, slot = (w > 0).nonzero(as_tuple=True)
        v = self.user_neighbors[lo:hi][u, slot]
        pos, owner = _segments(self.rowptr, v)
        pref_val = ((1 - self.alpha) * w[u, slot] / deg_u[v])[owner]
        pref_key = (u[owner] + lo) * self.num_items + self.col[pos]
        # Concurrence: (u, j) -> (u, i, alpha c_ji / (d_u sum_l c_jl)).
        a, b = int(self.rowptr[lo]), int(self.rowptr[hi])
        eu, ej = self.pairs[0, a:b], self.pairs[1, a:b]
        cw = self.item_weights[ej]
        e, slot = (cw > 0).nonzero(as_tuple=True)
        conc_val = self.alpha * cw[e, slot] / deg_u[eu[e]]
        conc_key = eu[e] * self.num_items + self.item_neighbors[ej[e], slot]
        keep = conc_val > 0
        return (torch.cat([pref_key, conc_key[keep]]),
                torch.cat([pref_val, conc_val[keep]]))

    def _assemble(self) -> Tuple[Tensor, Tensor, Tensor]:
        r"""The rows :math:`p(\cdot \mid u)` as CSR :obj:`(rowptr, col,
        prob)`, processed in user chunks of bounded size."""
        n = self.num_users
        pref_size = (self.user_degree[self.user_neighbors]
                     * (self.user_weights > 0)).sum(1)
        size = pref_size + self.user_degree * self.item_top_k
        ends = torch.cumsum(size, 0)
        keys, vals = [], []
        lo = 0
        while lo < n:
            base = int(ends[lo - 1]) if lo > 0 else 0
            hi = int(torch.searchsorted(ends, base + _CHUNK_TRIPLES,
                                        right=True))
            hi = min(n, max(hi, lo + 1))
            key, val = self._triples(lo, hi)
            uniq, inverse = torch.unique(key, sorted=True,
                                         return_inverse=True)
            summed = torch.zeros(uniq.numel(), dtype=torch.float64)
            summed.index_add_(0, inverse, val)
            keep = summed > 0  # e.g. the zero preference part when alpha=1
            keys.append(uniq[keep])
            vals.append(summed[keep])
            lo = hi
        key, val = torch.cat(keys), torch.cat(vals)
        row, col = key // self.num_items, key % self.num_items
        if self.beta:
            val = val * self.item_degree[col].to(torch.float64).pow(-self.beta)
        total = torch.zeros(n, dtype=torch.float64).index_add_(0, row, val)
        val = val / total[row]
        rowptr = torch.zeros(n + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(row, minlength=n), 0, out=rowptr[1:])
        return rowptr, col, val

    def probabilities(self) -> Tensor:
        r"""The distributions :math:`p(\cdot \mid u)` as a float64
        :obj:`torch.sparse_csr` tensor :obj:`[U, I]` (rows sum to 1, or are
        empty for users without candidates)."""
        with warnings.catch_warnings():  # 'sparse CSR is in beta'
            warnings.simplefilter('ignore', UserWarning)
            return torch.sparse_csr_tensor(self.prob_rowptr, self.prob_col,
                                           self.prob,
                                           (self.num_users, self.num_items),
                                           check_invariants=False)

    def _draw(self, g: torch.Generator) -> Tuple[Tensor, Tensor]:
        n = self.num_users
        length = self.prob_rowptr.diff()
        redraw = torch.rand(n, generator=g, dtype=torch.float64) \
            < self.replace_prob
        redraw &= (length > 0) & (self.user_degree > 0)
        rows = redraw.nonzero().view(-1)
        take = torch.minimum(self.user_degree[rows], length[rows])
        owner, pos = sample_rows_without_replacement(
            self.prob_rowptr, self.prob, rows, take, g)
        kept = (~redraw).nonzero().view(-1)
        kpos, kowner = _segments(self.rowptr, kept)
        users = torch.cat([kept[kowner], rows[owner]])
        items = torch.cat([self.col[kpos], self.prob_col[pos]])
        return _sorted_edges(users, items, self.num_items)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, alpha={self.alpha}, '
                f'beta={self.beta}, epsilon={self.epsilon}, '
                f'user_top_k={self.user_top_k}, '
                f'item_top_k={self.item_top_k}, '
                f'similarity={self.similarity}, weighting={self.weighting})')


GENERATORS = {'node_copy': NodeCopying, 'peco': PECO}


def build_generator(name: str, interactions: Interactions, **kwargs):
    r"""The generator :obj:`name` (:obj:`'node_copy'` or :obj:`'peco'`)
    fitted to :obj:`interactions`."""
    if name not in GENERATORS:
        raise ValueError(f"unknown graph generator '{name}' (expected one "
                         f"of {tuple(GENERATORS)})")
    return GENERATORS[name](interactions, **kwargs)
