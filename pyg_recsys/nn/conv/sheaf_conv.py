import warnings
import weakref
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse

from pyg_recsys.ops import mark_symmetric, spmm, to_csr

SUPPORTS = ('diag', 'general')


class SheafStructure(NamedTuple):
    r"""The graph side of a :class:`SheafConv` layer, computed once per graph
    (and cached by the layer when asked).

    Attributes:
        row (torch.Tensor): Source :math:`a` of every directed edge, sorted by
            :math:`(a, b)`, shape :obj:`[E]`.
        col (torch.Tensor): Target :math:`b` of every directed edge,
            shape :obj:`[E]`.
        rev (torch.Tensor): Position of the reverse edge :math:`(b, a)` of
            every edge, shape :obj:`[E]`.
        perm (torch.Tensor): Position in the input order of every sorted
            edge (:obj:`maps_sorted = maps_input[perm]`), shape :obj:`[E]`.
        pattern (torch.Tensor): The symmetric pattern of the off-diagonal
            blocks of the sheaf Laplacian on the stalk coordinates, an
            :obj:`[N s, N s]` :obj:`torch.sparse_csr` tensor marked
            symmetric; entry :math:`(a s + i, b s + j)` belongs to the edge
            :math:`(a, b)`.
        value_index (torch.Tensor, optional): For every stored entry of
            :obj:`pattern`, its position in the flattened per-edge blocks
            (:obj:`[E, s]` for diagonal maps, :obj:`[E, s, s]` for general
            ones); :obj:`None` when :math:`s = 1` (the pattern is the graph).
        upper (torch.Tensor): The positions of the edges with :math:`a < b`,
            one per undirected edge, shape :obj:`[E / 2]`.
        sym_index (torch.Tensor): For every edge, its position in
            :obj:`upper` if :math:`a < b`, else :math:`E / 2` plus the
            position of its reverse in :obj:`upper`, shape :obj:`[E]`.
        num_nodes (int): The number of nodes :math:`N`.
    """
    row: Tensor
    col: Tensor
    rev: Tensor
    perm: Tensor
    pattern: Tensor
    value_index: Optional[Tensor]
    upper: Tensor
    sym_index: Tensor
    num_nodes: int


class SheafConv(MessagePassing):
    r"""The sheaf diffusion layer with a learned sheaf from the `"Sheaf
    Neural Networks for Graph-based Recommender Systems"
    <https://arxiv.org/abs/2304.09097>`_ paper (Sheaf4Rec), after `"Neural
    Sheaf Diffusion" <https://arxiv.org/abs/2202.04579>`_.

    Every node has a stalk :math:`\mathbb{R}^s` and :math:`f` feature
    channels, so that its feature vector of size :math:`d = s f` is read as
    an :math:`s \times f` matrix :math:`\mathbf{X}_a` (coordinate :math:`i`
    holds the channels :obj:`x[a, i*f:(i+1)*f]`). Every directed edge
    :math:`(a, b)` carries the restriction map of its source,

    .. math::
        \mathbf{F}_{a \trianglelefteq e} = \tanh\left(\mathbf{W}_{\mathcal{F}}
        [\mathbf{x}_a \,\Vert\, \mathbf{x}_b]\right) \in \mathbb{R}^{s \times
        s},

    a scalar (:math:`s = 1`, as in the released Sheaf4Rec code), a diagonal
    matrix (:obj:`support='diag'`, :math:`s` values) or a general one
    (:obj:`support='general'`, :math:`s^2` values), computed from the layer
    input by a bias-free linear map of the :math:`2d` features. The map of
    :math:`b` on the same edge comes from the reverse edge :math:`(b, a)`,
    which must be present. The sheaf Laplacian has the blocks

    .. math::
        \mathbf{L}_{ab} = -\mathbf{F}_{a \trianglelefteq e}^{\top}
        \mathbf{F}_{b \trianglelefteq e}, \qquad
        \mathbf{L}_{aa} = \mathbf{D}_a = \sum_{e \ni a}
        \mathbf{F}_{a \trianglelefteq e}^{\top}
        \mathbf{F}_{a \trianglelefteq e},

    so that :math:`\mathbf{x}^{\top} \mathbf{L} \mathbf{x} = \sum_{\{a, b\}}
    \|\mathbf{F}_{a \trianglelefteq e} \mathbf{x}_a -
    \mathbf{F}_{b \trianglelefteq e} \mathbf{x}_b\|^2 \geq 0`, and the layer
    computes

    .. math::
        \mathbf{X}^{\prime} = \mathbf{X} - \tilde{\mathbf{L}}
        \left(\mathbf{X} \mathbf{W}^{\top} + \mathbf{b}\right), \qquad
        \tilde{\mathbf{L}} = \mathbf{S} \mathbf{L} \mathbf{S}, \quad
        \mathbf{S} = (\mathrm{diag}(\mathbf{D}) + \mathbf{I})^{-1/2},

    with :math:`\mathbf{W} \in \mathbb{R}^{f \times f}` and
    :math:`\mathbf{b} \in \mathbb{R}^f` acting on the channels, shared by the
    :math:`s` stalk coordinates. The normaliser :math:`\mathbf{S}` uses the
    diagonal entries of the diagonal blocks :math:`\mathbf{D}_a`: for
    :math:`s = 1` and diagonal maps that is :math:`(\mathbf{D} +
    \mathbf{I})^{-1/2}` exactly (the released code's normalisation); for
    general maps it is the diagonal (Jacobi) part of the blocks rather than
    the block inverse square root :math:`(\mathbf{D}_a + \mathbf{I})^{-1/2}`,
    which needs no eigendecomposition. :math:`\mathbf{S}` is diagonal and
    positive, so :math:`\tilde{\mathbf{L}}` stays symmetric positive
    semi-definite. With unit maps (:math:`s = 1`, :math:`\mathbf{F} = 1`),
    :math:`\mathbf{L} = \mathbf{D} - \mathbf{A}` and :math:`\mathbf{X} -
    \tilde{\mathbf{L}} \mathbf{X} = (\mathbf{D} + \mathbf{I})^{-1/2}
    (\mathbf{A} + \mathbf{I}) (\mathbf{D} + \mathbf{I})^{-1/2} \mathbf{X}`,
    the renormalised GCN propagation.

    The off-diagonal blocks run as one :func:`pyg_recsys.ops.spmm` on the
    stalk coordinates (an :math:`Ns \times Ns` pattern with :math:`E`,
    :math:`Es` or :math:`Es^2` entries, marked symmetric) with the computed
    blocks as the stored values, so gradients reach the maps through the
    values (an SDDMM); the diagonal blocks are a dense batched product. The
    operator is symmetric, so the edge direction plays no role (only the
    default :obj:`flow='source_to_target'` is accepted): the graph must hold
    both directions of every edge, with no self-loops and no repeated
    edges. A sparse adjacency gives only its pattern; its
    stored values are not used.

    Args:
        channels (int): The feature size :math:`d = s f` of every node.
        stalk_dim (int, optional): The stalk dimension :math:`s`, a divisor
            of :obj:`channels`. (default: :obj:`1`)
        support (str, optional): The form of the maps for :math:`s > 1`:
            :obj:`'diag'` or :obj:`'general'`; ignored for :math:`s = 1`.
            (default: :obj:`'diag'`)
        bias (bool, optional): If set to :obj:`False`, the channel map has no
            bias :math:`\mathbf{b}`. (default: :obj:`True`)
        cached (bool, optional): If set to :obj:`True`, the graph structure
            (edge order, reverse-edge pairing, block pattern) of the last
            graph is kept and reused while the same graph object (the same
            :obj:`edge_index` tensor or sparse adjacency) is passed again.
            (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, d)`,
          edge indices :math:`(2, |\mathcal{E}|)` (both directions) or a
          sparse adjacency :math:`(|\mathcal{V}|, |\mathcal{V}|)` with a
          symmetric pattern,
          restriction maps :math:`(|\mathcal{E}|)`,
          :math:`(|\mathcal{E}|, s)` or :math:`(|\mathcal{E}|, s, s)`
          *(optional, replacing the learned ones)*
        - **output:** node features :math:`(|\mathcal{V}|, d)`
    """
    _cached: Optional[Tuple[weakref.ref, SheafStructure]]

    def __init__(self, channels: int, stalk_dim: int = 1,
                 support: str = 'diag', bias: bool = True,
                 cached: bool = False, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        name = self.__class__.__name__
        if self.flow != 'source_to_target':
            raise ValueError(f"'{name}': the sheaf Laplacian is symmetric, "
                             f"so only flow='source_to_target' is supported, "
                             f"got '{self.flow}'")
        if stalk_dim <= 0:
            raise ValueError(f"'{name}': stalk_dim must be positive, got "
                             f"{stalk_dim}")
        if channels <= 0 or channels % stalk_dim != 0:
            raise ValueError(f"'{name}': channels={channels} must be a "
                             f"positive multiple of stalk_dim={stalk_dim} "
                             f"(every node holds stalk_dim stalk coordinates "
                             f"of channels // stalk_dim features)")
        if support not in SUPPORTS:
            raise ValueError(f"'{name}': support must be one of {SUPPORTS}, "
                             f"got '{support}'")
        self.channels = channels
        self.stalk_dim = stalk_dim
        self.support = support
        self.cached = cached
        self.num_channels = channels // stalk_dim  # f
        s = stalk_dim
        self.map_dim = 1 if s == 1 else (s if support == 'diag' else s * s)
        self.sheaf_learner = torch.nn.Linear(2 * channels, self.map_dim,
                                             bias=False)
        self.lin = torch.nn.Linear(self.num_channels, self.num_channels,
                                   bias=bias)
        self._cached = None

    @property
    def map_shape(self) -> Tuple[int, ...]:
        r"""The shape of one restriction map: :obj:`()`, :obj:`(s, )` or
        :obj:`(s, s)`."""
        s = self.stalk_dim
        if s == 1:
            return ()
        return (s, ) if self.support == 'diag' else (s, s)

    def reset_parameters(self):
        r"""PyTorch's default initialisation of the map network and the
        channel map; clears the cached graph structure."""
        super().reset_parameters()
        self.sheaf_learner.reset_parameters()
        self.lin.reset_parameters()
        self._cached = None

    # ------------------------------------------------------------------
    def structure(self, edge_index: Adj, num_nodes: int) -> SheafStructure:
        r"""The sorted edges, the reverse-edge pairing and the block pattern
        of :obj:`edge_index` (an :obj:`[2, E]` tensor or a sparse
        adjacency), reused from the cache when :obj:`cached=True` and the
        same object was seen last.

        Raises:
            ValueError: If an edge lacks its reverse, an edge is repeated or
                is a self-loop, or the adjacency is not
                :obj:`num_nodes` x :obj:`num_nodes`.
        """
        if self.cached and self._cached is not None:
            ref, struct = self._cached
            if ref() is edge_index and struct.num_nodes == num_nodes:
                return struct
        struct = self._build_structure(edge_index, num_nodes)
        if self.cached:
            try:
                self._cached = (weakref.ref(edge_index), struct)
            except TypeError:  # not weak-referenceable: do not cache
                self._cached = None
        return struct

    def _build_structure(self, edge_index: Adj,
                         num_nodes: int) -> SheafStructure:
        name = self.__class__.__name__
        if is_sparse(edge_index):
            csr = to_csr(edge_index)
            if csr.num_rows != num_nodes or csr.num_cols != num_nodes:
                raise ValueError(f"'{name}': the adjacency is "
                                 f"{csr.num_rows}x{csr.num_cols} but there "
                                 f"are {num_nodes} nodes")
            row, col = csr.row(), csr.col.to(torch.int64)
        else:
            if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 \
                    or edge_index.size(0) != 2:
                shape = tuple(edge_index.shape) if isinstance(
                    edge_index, Tensor) else type(edge_index).__name__
                raise ValueError(f"'{name}': edge_index must have shape "
                                 f"[2, num_edges], got {shape}")
            row, col = edge_index[0].long(), edge_index[1].long()
            if row.numel() and (int(torch.minimum(row, col).min()) < 0 or
                                int(torch.maximum(row, col).max())
                                >= num_nodes):
                raise ValueError(f"'{name}': edge_index holds node ids "
                                 f"outside [0, {num_nodes})")
        return build_structure(row, col, num_nodes, self.stalk_dim,
                               self.support, where=name)

    def restriction_maps(self, x: Tensor, struct: SheafStructure) -> Tensor:
        r"""The learned maps :math:`\mathbf{F}_{a \trianglelefteq e}` of the
        edges of :obj:`struct` (in its sorted order) for the layer input
        :obj:`x`: shape :obj:`[E]` (:math:`s = 1`), :obj:`[E, s]`
        (:obj:`'diag'`) or :obj:`[E, s, s]` (:obj:`'general'`).

        :math:`\mathbf{W}_{\mathcal{F}} [\mathbf{x}_a \Vert \mathbf{x}_b] =
        \mathbf{W}_1 \mathbf{x}_a + \mathbf{W}_2 \mathbf{x}_b` is computed
        per node and gathered per edge, with no :math:`E \times 2d`
        intermediate.
        """
        d = self.channels
        w = self.sheaf_learner.weight
        src = x @ w[:, :d].t()
        dst = x @ w[:, d:].t()
        maps = torch.tanh(src.index_select(0, struct.row) +
                          dst.index_select(0, struct.col))
        return maps.view(-1, *self.map_shape)

    def maps(self, x: Tensor, edge_index: Adj) -> Tuple[Tensor, Tensor]:
        r"""The learned restriction maps for the layer input :obj:`x`, with
        the directed edges they belong to.

        Returns:
            (torch.Tensor, torch.Tensor): the edges :obj:`[2, E]` (source
            first, sorted by source then target) and their maps, shape
            :obj:`[E]`, :obj:`[E, s]` or :obj:`[E, s, s]`.
        """
        self._check_x(x)
        struct = self.structure(edge_index, x.size(0))
        return (torch.stack([struct.row, struct.col]),
                self.restriction_maps(x, struct))

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.channels:
            raise ValueError(f"'{self.__class__.__name__}' expects node "
                             f"features of shape [num_nodes, "
                             f"{self.channels}], got {tuple(x.shape)}")

    def _check_maps(self, maps: Tensor, struct: SheafStructure) -> Tensor:
        shape = (struct.row.numel(), *self.map_shape)
        if tuple(maps.shape) != shape:
            raise ValueError(f"'{self.__class__.__name__}': 'maps' must have "
                             f"shape {list(shape)} (one map per directed "
                             f"edge), got {tuple(maps.shape)}")
        return maps.index_select(0, struct.perm)

    def laplacian_blocks(self, maps: Tensor, struct: SheafStructure
                         ) -> Tuple[Tensor, Tensor]:
        r"""The normalised Laplacian :math:`\tilde{\mathbf{L}}` of the maps
        :obj:`maps` (in the sorted order of :obj:`struct`).

        Returns:
            (torch.Tensor, torch.Tensor): the diagonal blocks, shape
            :obj:`[N]`, :obj:`[N, s]` (the diagonal of diagonal blocks) or
            :obj:`[N, s, s]`, and the stored values of :obj:`struct.pattern`
            (the off-diagonal blocks), shape :obj:`[nnz]`.
        """
        row, col, rev = struct.row, struct.col, struct.rev
        n = struct.num_nodes
        s = self.stalk_dim
        if maps.dim() <= 2:  # scalar or diagonal maps: elementwise
            flat = maps if s == 1 else maps.view(-1, s)
            shape = (n, ) if s == 1 else (n, s)
            deg = flat.new_zeros(shape).index_add(0, row, flat * flat)
            norm = (deg + 1.0).rsqrt()
            off = -(norm.index_select(0, row) * norm.index_select(0, col)) * \
                (flat * flat.index_select(0, rev))
            diag = deg * norm * norm
        else:
            deg = maps.new_zeros(n, s, s).index_add(0, row,
                                                    _tmatmul(maps, maps))
            norm = (torch.diagonal(deg, dim1=1, dim2=2) + 1.0).rsqrt()
            # F_a^T F_b once per undirected edge (the edges a < b); the
            # reverse edge gets its transpose, so L[b, a] = L[a, b]^T
            # exactly, not only up to rounding: the pattern is marked
            # symmetric, and backward multiplies by it as its own transpose.
            upper = struct.upper
            prod = _tmatmul(maps.index_select(0, upper),
                            maps.index_select(0, rev.index_select(0, upper)))
            prod = torch.cat([prod, prod.transpose(1, 2)]).index_select(
                0, struct.sym_index)
            # (n_a[i] n_b[j]) is computed first so that the entries of the
            # two directions round identically.
            off = -prod * (norm.index_select(0, row).unsqueeze(2) *
                           norm.index_select(0, col).unsqueeze(1))
            diag = deg * (norm.unsqueeze(2) * norm.unsqueeze(1))
        off = off.reshape(-1)
        if struct.value_index is not None:
            off = off.index_select(0, struct.value_index)
        return diag, off

    def forward(self, x: Tensor, edge_index: Adj,
                maps: OptTensor = None) -> Tensor:
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features, shape :obj:`[N, d]`.
            edge_index (torch.Tensor or sparse): Edge indices with both
                directions of every edge, or a sparse adjacency with a
                symmetric pattern (its values are not used).
            maps (torch.Tensor, optional): Restriction maps to use instead of
                the learned ones, one per directed edge in the order of
                :obj:`edge_index` (the stored order of a sparse adjacency):
                shape :obj:`[E]`, :obj:`[E, s]` or :obj:`[E, s, s]`.
                (default: :obj:`None`)
        """
        self._check_x(x)
        num_nodes = x.size(self.node_dim)
        struct = self.structure(edge_index, num_nodes)
        if maps is None:
            maps = self.restriction_maps(x, struct)
        else:
            maps = self._check_maps(maps, struct)
        diag, value = self.laplacian_blocks(maps.to(x.dtype), struct)

        s, f = self.stalk_dim, self.num_channels
        y = self.lin(x.reshape(num_nodes, s, f))
        if diag.dim() == 3:
            lap = torch.bmm(diag, y)
        else:
            lap = diag.view(num_nodes, s, 1) * y
        # propagate_type: (x: Tensor, edge_weight: Tensor)
        off = self.propagate(struct.pattern, x=y.reshape(num_nodes * s, f),
                             edge_weight=value)
        lap = lap + off.view(num_nodes, s, f)
        return x - lap.view(num_nodes, s * f)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor,
                              edge_weight: Tensor) -> Tensor:
        if self.aggr != 'add':
            raise ValueError(f"'{self.__class__.__name__}' supports only "
                             f"aggr='add', got '{self.aggr}'")
        return spmm(adj_t, x, value=edge_weight)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'stalk_dim={self.stalk_dim}, support={self.support!r})')


def build_structure(row: Tensor, col: Tensor, num_nodes: int, stalk_dim: int,
                    support: str = 'diag',
                    where: str = 'SheafConv') -> SheafStructure:
    r"""The :class:`SheafStructure` of the directed edges :obj:`(row, col)`.

    Edges are sorted by the key :math:`a N + b`; the reverse of every edge is
    found by :func:`torch.searchsorted` of :math:`b N + a` among the sorted
    keys. The block pattern has the entries :math:`(a s + i, b s + i)`
    (:math:`s = 1` or diagonal maps) or :math:`(a s + i, b s + j)` (general
    maps) of every edge, in CSR order.

    Raises:
        ValueError: If an edge lacks its reverse (the edge is named), an edge
            is repeated, or an edge is a self-loop.
    """
    n = num_nodes
    device = row.device
    loops = row == col
    if bool(loops.any()):
        a = int(row[loops][0])
        raise ValueError(f"'{where}': self-loops are not supported (the "
                         f"sheaf Laplacian of a loop is zero), e.g. ({a}, "
                         f"{a}); remove them first")
    key = row * n + col
    key, perm = torch.sort(key)
    if key.numel() > 1:
        dup = key[1:] == key[:-1]
        if bool(dup.any()):
            k = int(key[1:][dup][0])
            raise ValueError(f"'{where}': the edge ({k // n}, {k % n}) is "
                             f"repeated; coalesce the graph first")
    row, col = key // n, key % n
    num_edges = key.numel()
    rev_key = col * n + row
    rev = torch.searchsorted(key, rev_key).clamp(max=max(num_edges - 1, 0))
    if num_edges:
        missing = key[rev] != rev_key
        if bool(missing.any()):
            e = int(missing.nonzero()[0])
            raise ValueError(f"'{where}': the edge ({int(row[e])}, "
                             f"{int(col[e])}) has no reverse edge "
                             f"({int(col[e])}, {int(row[e])}); the sheaf "
                             f"Laplacian needs both directions of every edge "
                             f"(e.g. torch_geometric.utils.to_undirected)")

    s = stalk_dim
    if s == 1:
        rows, cols, value_index = row, col, None
        size = n
    else:
        size = n * s
        coord = torch.arange(s, device=device)
        if support == 'diag':  # entry e * s + i at (a s + i, b s + i)
            i = coord.repeat(num_edges)
            e = torch.arange(num_edges, device=device).repeat_interleave(s)
            rows, cols = row[e] * s + i, col[e] * s + i
        else:  # entry (e * s + i) * s + j at (a s + i, b s + j)
            i = coord.repeat_interleave(s).repeat(num_edges)
            j = coord.repeat(num_edges * s)
            e = torch.arange(num_edges,
                             device=device).repeat_interleave(s * s)
            rows, cols = row[e] * s + i, col[e] * s + j
        value_index = torch.argsort(rows * size + cols)
        rows, cols = rows[value_index], cols[value_index]
    rowptr = torch.zeros(size + 1, dtype=torch.int64, device=device)
    torch.cumsum(torch.bincount(rows, minlength=size), 0, out=rowptr[1:])
    ones = torch.ones(cols.numel(), device=device)
    with warnings.catch_warnings():  # 'sparse CSR is in beta'
        warnings.simplefilter('ignore', UserWarning)
        pattern = torch.sparse_csr_tensor(rowptr, cols, ones, (size, size),
                                          check_invariants=False)
    is_upper = row < col
    upper = is_upper.nonzero().view(-1)
    position = torch.empty(num_edges, dtype=torch.int64, device=device)
    position[upper] = torch.arange(upper.numel(), device=device)
    sym_index = torch.where(is_upper, position,
                            upper.numel() + position[rev])
    return SheafStructure(row, col, rev, perm, mark_symmetric(pattern),
                          value_index, upper, sym_index, n)


def _tmatmul(a: Tensor, b: Tensor) -> Tensor:
    r""":math:`\mathbf{A}_e^{\top} \mathbf{B}_e` for every :math:`e`, shape
    :obj:`[E, s, s]`."""
    return torch.bmm(a.transpose(1, 2), b)
