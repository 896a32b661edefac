r"""Neighbour sampling in pure PyTorch, for PyG's loaders and mini-batch
training on sampled subgraphs.

PyG's :class:`~torch_geometric.sampler.NeighborSampler` (behind
:class:`~torch_geometric.loader.LinkNeighborLoader` and
:class:`~torch_geometric.loader.NeighborLoader`) calls ``pyg-lib`` or
``torch_sparse``, neither of which this package requires.
:class:`TorchNeighborSampler` is that sampler with its homogeneous sampling
done by :func:`sample_neighbors`, in vectorised torch: pass it to a loader as
:obj:`neighbor_sampler=`.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.sampler import NeighborSampler, SamplerOutput

from pyg_recsys.ops.csr import mark_normalized


def _first_seen(values: Tensor) -> Tuple[Tensor, Tensor]:
    r"""The distinct entries of :obj:`values` in order of first appearance,
    and the index of each entry among them."""
    uniq, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((uniq.numel(), ), values.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(values.numel()), 'amin')
    order = first.argsort()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return uniq[order], rank[inverse]


def _without_replacement(begin: Tensor, deg: Tensor, k: int,
                         generator: Optional[torch.Generator]
                         ) -> Tuple[Tensor, Tensor]:
    r"""For each node (segment :obj:`begin[v]`, :obj:`deg[v]` long), all its
    positions when :obj:`deg[v] <= k`, else :obj:`k` distinct ones drawn
    uniformly by Floyd's algorithm, vectorised over the nodes: step
    :math:`j = d - k, \ldots, d - 1` draws :math:`t` uniform in
    :math:`[0, j]` and keeps :math:`t`, or :math:`j` if :math:`t` is kept
    already. Returns the nodes' indices and the positions, by node."""
    big = deg > k
    take = torch.where(big, k, deg)
    seg = torch.repeat_interleave(torch.arange(deg.numel()), take)
    offset = torch.cumsum(take, 0) - take
    within = torch.arange(seg.numel()) - offset[seg]
    hub = big.nonzero().view(-1)
    chosen = torch.empty(hub.numel(), k, dtype=torch.long)
    d = deg[hub]
    for step in range(k):
        j = d - k + step
        t = (torch.rand(hub.numel(), generator=generator,
                        dtype=torch.float64) * (j + 1)).long()
        t = torch.minimum(t, j)
        taken = (chosen[:, :step] == t.unsqueeze(1)).any(1)
        chosen[:, step] = torch.where(taken, j, t)
    # The hubs' slots, k each and in order, take the drawn positions.
    slot = offset[hub].unsqueeze(1) + torch.arange(k)
    within[slot.view(-1)] = chosen.view(-1)
    return seg, begin[seg] + within


def sample_neighbors(colptr: Tensor, row: Tensor, seed: Tensor,
                     num_neighbors: Sequence[int], replace: bool = False,
                     generator: Optional[torch.Generator] = None
                     ) -> Tuple[Tensor, Tensor, Tensor, Tensor, List[int],
                                List[int]]:
    r"""Samples the :obj:`len(num_neighbors)`-hop in-neighbourhood of
    :obj:`seed` from a graph in CSC form (the sources of target :obj:`v` are
    :obj:`row[colptr[v]:colptr[v + 1]]`), as PyG's directional neighbour
    sampling does: hop :math:`h` draws, for every node first reached at hop
    :math:`h - 1`, :obj:`num_neighbors[h]` of its sources uniformly without
    replacement (all of them if it has fewer, or if the count is negative);
    with :obj:`replace=True`, that many draws with replacement. Each node is
    expanded once.

    Returns:
        :obj:`(node, row, col, edge, num_sampled_nodes, num_sampled_edges)`:
        the global ids of the subgraph's nodes (the seeds first, as given,
        then the new nodes of each hop in order of first appearance), its
        edges as local source and target indices into :obj:`node`, their
        positions in :obj:`row` (CSC order), and the nodes and edges added
        per hop. The layout of PyG's :class:`SamplerOutput`.
    """
    seed = seed.view(-1).long()
    num_nodes = colptr.numel() - 1
    if seed.numel() and (int(seed.min()) < 0 or int(seed.max()) >= num_nodes):
        raise ValueError(f"sample_neighbors: seed ids must lie in "
                         f"[0, {num_nodes}), got [{int(seed.min())}, "
                         f"{int(seed.max())}]")
    nodes = [seed]
    # Global id -> local index (-1: not reached yet), reset before return.
    local_of = torch.full((num_nodes, ), -1, dtype=torch.long)
    # A repeated seed maps to its first occurrence (the flip: the last write
    # of each id wins).
    local_of[seed.flip(0)] = torch.arange(seed.numel() - 1, -1, -1)
    rows, cols, edges = [], [], []
    num_sampled_nodes, num_sampled_edges = [seed.numel()], []
    start, count = 0, seed.numel()
    for k in num_neighbors:
        k = int(k)
        frontier = torch.arange(start, start + count)
        glob = nodes[-1]  # the nodes first reached at the last hop
        begin = colptr[glob]
        deg = colptr[glob + 1] - begin
        if replace and k >= 0:
            take = torch.where(deg > 0, torch.full_like(deg, k), 0)
            seg = torch.repeat_interleave(torch.arange(count), take)
            draw = torch.rand(seg.numel(), generator=generator,
                              dtype=torch.float64)
            pos = (draw * deg[seg]).long().clamp_(max=deg[seg] - 1)
            edge = begin[seg] + pos
        elif k < 0 or not bool((deg > k).any()):
            seg = torch.repeat_interleave(torch.arange(count), deg)
            offset = torch.cumsum(deg, 0) - deg
            edge = begin[seg] + torch.arange(seg.numel()) - offset[seg]
        else:
            seg, edge = _without_replacement(begin, deg, k, generator)
        src = row[edge]
        # Local indices: reached nodes by lookup, new ones appended in the
        # order they first appear.
        local = local_of[src]
        new = local < 0
        fresh, rank = _first_seen(src[new])
        base = start + count
        local_of[fresh] = base + torch.arange(fresh.numel())
        local[new] = base + rank
        nodes.append(fresh)
        rows.append(local)
        cols.append(frontier[seg])
        edges.append(edge)
        num_sampled_nodes.append(fresh.numel())
        num_sampled_edges.append(edge.numel())
        start, count = base, fresh.numel()
    empty = seed.new_empty(0)
    return (torch.cat(nodes), torch.cat(rows) if rows else empty,
            torch.cat(cols) if cols else empty,
            torch.cat(edges) if edges else empty, num_sampled_nodes,
            num_sampled_edges)


class TorchNeighborSampler(NeighborSampler):
    r""":class:`torch_geometric.sampler.NeighborSampler` for homogeneous
    graphs, sampling with :func:`sample_neighbors` in pure torch instead of
    ``pyg-lib`` or ``torch_sparse``; everything else (CSC conversion, seeds,
    negative sampling, the :class:`SamplerOutput`) is PyG's. Directional
    sampling, uniform, with or without replacement; not temporal, weighted,
    disjoint or induced.

    .. code-block:: python

        from torch_geometric.loader import LinkNeighborLoader
        sampler = TorchNeighborSampler(data, num_neighbors=[10, 10])
        loader = LinkNeighborLoader(data, num_neighbors=[10, 10],
                                    neighbor_sampler=sampler,
                                    edge_label_index=data.edge_index,
                                    neg_sampling='triplet', batch_size=1024)

    Args:
        data (torch_geometric.data.Data): The graph.
        num_neighbors (list of int): Sources drawn per node and hop
            (:obj:`-1`: all).
        replace (bool, optional): Draw with replacement.
            (default: :obj:`False`)
        generator (torch.Generator, optional): The random stream of the
            draws. (default: torch's global one)
        **kwargs (optional): Other arguments of
            :class:`~torch_geometric.sampler.NeighborSampler`.
    """
    def __init__(self, data, num_neighbors: Sequence[int],
                 replace: bool = False,
                 generator: Optional[torch.Generator] = None, **kwargs):
        for name in ('time_attr', 'weight_attr'):
            if kwargs.get(name) is not None:
                raise ValueError(f"TorchNeighborSampler: '{name}' is not "
                                 f"supported (uniform sampling only)")
        if kwargs.get('disjoint'):
            raise ValueError("TorchNeighborSampler: disjoint sampling is not "
                             "supported")
        if str(kwargs.get('subgraph_type', 'directional')) not in (
                'directional', 'SubgraphType.directional'):
            raise ValueError("TorchNeighborSampler: only directional "
                             "subgraphs are supported")
        if kwargs.get('sample_direction', 'forward') != 'forward':
            raise ValueError("TorchNeighborSampler: only forward sampling is "
                             "supported")
        with warnings.catch_warnings():  # the advice to install pyg-lib
            warnings.filterwarnings('ignore', message='.*pyg-lib.*')
            super().__init__(data, num_neighbors, replace=replace, **kwargs)
        if isinstance(self.colptr, dict):
            raise ValueError("TorchNeighborSampler: homogeneous graphs only "
                             "(a torch_geometric.data.Data)")
        self.generator = generator

    def _sample(self, seed: Tensor, seed_time: Optional[Tensor] = None,
                **kwargs) -> SamplerOutput:
        if isinstance(seed, dict):
            raise ValueError("TorchNeighborSampler: homogeneous graphs only")
        node, row, col, edge, num_nodes, num_edges = sample_neighbors(
            self.colptr, self.row, seed,
            self.num_neighbors.get_mapped_values(), self.replace,
            self.generator)
        return SamplerOutput(node=node, row=row, col=col, edge=edge,
                             num_sampled_nodes=num_nodes,
                             num_sampled_edges=num_edges)


def sampled_adjacency(edge_index: Tensor, n_id: Tensor,
                      degree: Tensor) -> Tensor:
    r"""The LightGCN propagation matrix of a sampled subgraph, as a marked,
    normalised sparse CSR matrix of shape :obj:`[n, n]`
    (:obj:`n = n_id.numel()`) that :class:`~pyg_recsys.nn.models.LightGCN`
    propagates in one fused call.

    Edge :math:`s \to t` (local indices in :obj:`edge_index`, as a PyG
    loader returns them) weighs :math:`\frac{1}{\sqrt{d_s d_t}} \cdot
    \frac{d_t}{c_t}`: the full graph's normalised entry (:obj:`degree`, the
    degrees of the whole graph by global id), scaled by the target's degree
    over its :math:`c_t` sampled in-edges. A target's row is then an unbiased
    estimate of its row of :math:`\hat{\mathbf{A}}\mathbf{X}` under uniform
    sampling, and exactly that row when all its neighbours were sampled. (A
    :class:`~torch_geometric.nn.conv.LGConv` on the sampled
    :obj:`edge_index` normalises by the subgraph's degrees instead, which
    zeroes the messages of nodes without sampled in-edges.)
    """
    n = n_id.numel()
    src, dst = edge_index[0], edge_index[1]
    if dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        order = torch.argsort(dst, stable=True)
        src, dst = src[order], dst[order]
    # A sampler's edges come grouped by target: CSR rows without a sort.
    count = torch.bincount(dst, minlength=n)
    crow = torch.zeros(n + 1, dtype=torch.long)
    torch.cumsum(count, 0, out=crow[1:])
    deg = degree.to(torch.float64)[n_id]
    weight = (deg[dst] / count[dst]) / (deg[src] * deg[dst]).sqrt()
    adj = torch.sparse_csr_tensor(crow, src, weight.to(torch.float), (n, n),
                                  check_invariants=False)
    return mark_normalized(adj)


class SubgraphSampler:
    r"""The sampled subgraph around each training batch, for mini-batch
    training of :class:`~pyg_recsys.nn.models.LightGCN` (and :class:`MF`)
    when full-graph propagation does not fit, as the
    :class:`~pyg_recsys.train.Trainer` does with
    :obj:`TrainConfig(num_neighbors=[...])`.

    The batch's distinct nodes are the seeds; :func:`sample_neighbors` draws
    their neighbourhood on the symmetric graph :obj:`adj` (one hop per
    propagation layer), and :func:`sampled_adjacency` weighs it. With
    :obj:`-1` at every hop the seeds' embeddings are exactly the full
    graph's.

    Args:
        adj (torch.Tensor): The graph as a sparse CSR matrix of shape
            :obj:`[N, N]`, symmetric (e.g.
            :meth:`~pyg_recsys.data.InteractionGraph.norm_adj`; only its
            pattern is read).
        num_neighbors (list of int): Neighbours drawn per node and hop
            (:obj:`-1`: all).
        generator (torch.Generator, optional): The random stream.
    """
    def __init__(self, adj: Tensor, num_neighbors: Sequence[int],
                 generator: Optional[torch.Generator] = None):
        adj = adj.to_sparse_csr() if adj.layout != torch.sparse_csr else adj
        self.colptr = adj.crow_indices().cpu().long()
        self.row = adj.col_indices().cpu().long()
        self.degree = self.colptr.diff()
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.generator = generator

    def __call__(self, users: Tensor, pos: Tensor, neg: Tensor
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        r"""For triples of node ids, returns :obj:`(adj, n_id, users, pos,
        neg)`: the subgraph's propagation matrix, its nodes' global ids and
        the triples as local indices into them."""
        seeds = torch.cat([users, pos, neg.reshape(-1)])
        uniq, inverse = torch.unique(seeds, return_inverse=True)
        node, row, col, _, _, _ = sample_neighbors(
            self.colptr, self.row, uniq, self.num_neighbors,
            generator=self.generator)
        adj = sampled_adjacency(torch.stack([row, col]), node, self.degree)
        u, p, n = inverse.split([users.numel(), pos.numel(), neg.numel()])
        return adj, node, u, p, n.view(neg.shape)


def sample_fixed_neighbors(rowptr: Tensor, col: Tensor, nodes: Tensor,
                           k: int, generator: Optional[torch.Generator] = None
                           ) -> Tensor:
    r"""Exactly :obj:`k` neighbours of every node in :obj:`nodes`, drawn
    uniformly **with replacement** from its CSR row (the neighbours of node
    :math:`v` are :obj:`col[rowptr[v]:rowptr[v + 1]]`), as BGCF samples its
    neighbourhoods. A node without neighbours gets :obj:`-1` in every slot.

    Args:
        rowptr (torch.Tensor): CSR offsets, shape :obj:`[N + 1]`.
        col (torch.Tensor): Neighbour ids.
        nodes (torch.Tensor): Node ids in :math:`[0, N)`, any shape
            (repeats are sampled independently).
        k (int): Draws per node.
        generator (torch.Generator, optional): Source of randomness.

    Returns:
        torch.Tensor: :obj:`[*nodes.shape, k]` neighbour ids.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"sample_fixed_neighbors: k must be positive, got "
                         f"{k}")
    n = rowptr.numel() - 1
    flat = nodes.reshape(-1).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= n):
        raise ValueError(f"sample_fixed_neighbors: node ids must lie in "
                         f"[0, {n}), got [{int(flat.min())}, "
                         f"{int(flat.max())}]")
    start = rowptr[flat]
    deg = rowptr[flat + 1] - start
    u = torch.rand(flat.numel(), k, generator=generator, dtype=torch.float64,
                   device=rowptr.device)
    offset = (u * deg.unsqueeze(1)).long()
    offset = torch.minimum(offset, (deg - 1).clamp(min=0).unsqueeze(1))
    pos = (start.unsqueeze(1) + offset).clamp_(max=max(col.numel() - 1, 0))
    out = col[pos] if col.numel() else torch.full_like(pos, -1)
    out = out.masked_fill_((deg == 0).unsqueeze(1), -1)
    return out.view(*nodes.shape, k)
