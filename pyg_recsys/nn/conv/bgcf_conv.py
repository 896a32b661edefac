from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import softmax

PairTensor = Tuple[Tensor, Tensor]


def _pair(who: str, x: Union[Tensor, PairTensor]) -> PairTensor:
    if isinstance(x, Tensor):
        x = (x, x)
    if x[0].dim() != 2 or x[1].dim() != 2 or x[0].size(1) != x[1].size(1):
        raise ValueError(f"'{who}' expects node features of shapes [N_src, "
                         f"F] and [N_dst, F], got {tuple(x[0].shape)} and "
                         f"{tuple(x[1].shape)}")
    return x


def _check_edges(who: str, edge_index: Tensor, x: PairTensor) -> None:
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'{who}' expects edge_index of shape [2, E], got "
                         f"{tuple(edge_index.shape)}")
    if edge_index.numel() == 0:
        return
    for row, n, side in ((edge_index[0], x[0].size(0), 'source'),
                         (edge_index[1], x[1].size(0), 'target')):
        if int(row.min()) < 0 or int(row.max()) >= n:
            raise ValueError(f"'{who}': {side} ids must lie in [0, {n}), "
                             f"got [{int(row.min())}, {int(row.max())}]")


def _check_fixed(who: str, x: Tensor, x_nbr: Tensor,
                 mask: Optional[Tensor]) -> None:
    if x.dim() != 2 or x_nbr.dim() != 3 or x_nbr.size(0) != x.size(0) or \
            x_nbr.size(2) != x.size(1):
        raise ValueError(f"'{who}' expects targets [n, F] and neighbours "
                         f"[n, k, F], got {tuple(x.shape)} and "
                         f"{tuple(x_nbr.shape)}")
    if mask is not None and mask.shape != x_nbr.shape[:2]:
        raise ValueError(f"'{who}': mask must have shape "
                         f"{tuple(x_nbr.shape[:2])}, got {tuple(mask.shape)}")


class BGCFMeanConv(MessagePassing):
    r"""The mean aggregator of the `"A Framework for Recommending Accurate
    and Diverse Items Using Bayesian Graph Convolutional Neural Networks"
    <https://doi.org/10.1145/3394486.3403254>`_ paper (BGCF, Sun et al., KDD
    2020), as its official code (MindSpore model zoo,
    :obj:`research/gnn/bgcf`) computes it:

    .. math::
        \mathbf{x}^{\prime}_i = \sigma\left(\mathbf{W} \left[
        \mathbf{x}_i \,\Vert\, \mathrm{dropout}\Big(\frac{1}{|\mathcal{N}(i)|}
        \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j\Big) \right]\right),

    with :math:`\sigma = \tanh` and no bias. In BGCF, :math:`\mathcal{N}(i)`
    is a fixed number of neighbours sampled with replacement (repeated
    edges count as often as they are drawn); a target without any edge gets
    a zero mean.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        dropout (float, optional): Dropout probability of the neighbour mean.
            (default: :obj:`0.0`)
        act (str, optional): :obj:`'tanh'` or :obj:`'relu'`.
            (default: :obj:`'tanh'`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{in}), (|\mathcal{V_t}|, F_{in}))`
          if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)` (source, target)
        - **output:** node features :math:`(|\mathcal{V}_t|, F_{out})`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 dropout: float = 0.0, act: str = 'tanh', **kwargs):
        kwargs.setdefault('aggr', 'mean')
        super().__init__(**kwargs)
        if act not in ('tanh', 'relu'):
            raise ValueError(f"'{self.__class__.__name__}': act must be "
                             f"'tanh' or 'relu', got '{act}'")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'{self.__class__.__name__}': dropout must lie "
                             f"in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.act = act
        self.lin = Linear(2 * in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Union[Tensor, PairTensor],
                edge_index: Tensor) -> Tensor:
        x = _pair(self.__class__.__name__, x)
        _check_edges(self.__class__.__name__, edge_index, x)
        # propagate_type: (x: PairTensor)
        mean = self.propagate(edge_index, x=x, size=(x[0].size(0),
                                                     x[1].size(0)))
        mean = F.dropout(mean, p=self.dropout, training=self.training)
        out = self.lin(torch.cat([x[1], mean], dim=-1))
        return torch.tanh(out) if self.act == 'tanh' else out.relu()

    def forward_fixed(self, x: Tensor, x_nbr: Tensor,
                      mask: Optional[Tensor] = None) -> Tensor:
        r"""The same on fixed-size neighbourhoods held densely (as a
        sampler with replacement draws them): :obj:`x` the targets
        :obj:`[n, F]`, :obj:`x_nbr` their neighbours :obj:`[n, k, F]`,
        :obj:`mask` :obj:`[n, k]` the slots that hold a neighbour (default:
        all). Equal to :meth:`forward` on the edges of the valid slots, with
        one gather and no scatter."""
        _check_fixed(self.__class__.__name__, x, x_nbr, mask)
        if mask is None:
            mean = x_nbr.mean(1)
        else:
            m = mask.unsqueeze(-1).to(x_nbr.dtype)
            mean = (x_nbr * m).sum(1) / m.sum(1).clamp(min=1.0)
        mean = F.dropout(mean, p=self.dropout, training=self.training)
        out = self.lin(torch.cat([x, mean], dim=-1))
        return torch.tanh(out) if self.act == 'tanh' else out.relu()

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, dropout={self.dropout}, '
                f'act={self.act})')


class BGCFAttentionConv(MessagePassing):
    r"""The attention aggregator of the `"A Framework for Recommending
    Accurate and Diverse Items Using Bayesian Graph Convolutional Neural
    Networks" <https://doi.org/10.1145/3394486.3403254>`_ paper (BGCF), as
    its official code computes it: dot-product attention of the target over
    its (dropped-out) neighbours, then a linear map of the attended
    neighbour and the target itself,

    .. math::
        \tilde{\mathbf{x}}_j = \mathrm{dropout}(\mathbf{x}_j), \quad
        \alpha_{ij} = \frac{\exp(\mathbf{x}_i^{\top}\tilde{\mathbf{x}}_j)}
        {\sum_{k \in \mathcal{N}(i)} \exp(\mathbf{x}_i^{\top}
        \tilde{\mathbf{x}}_k)}, \quad
        \mathbf{x}^{\prime}_i = \mathbf{W} \Big[ \sum_{j \in \mathcal{N}(i)}
        \alpha_{ij} \tilde{\mathbf{x}}_j \,\Vert\, \mathbf{x}_i \Big],

    with no activation and no bias (BGCF applies :math:`\tanh` to the
    concatenated aggregators). Dropout is drawn per edge, so a neighbour
    drawn twice is dropped independently. A target without any edge
    attends to nothing (a zero vector).

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        dropout (float, optional): Dropout probability of the neighbour
            features. (default: :obj:`0.0`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{in}), (|\mathcal{V_t}|, F_{in}))`
          if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)` (source, target)
        - **output:** node features :math:`(|\mathcal{V}_t|, F_{out})`
    """
    def __init__(self, in_channels: int, out_channels: int,
                 dropout: float = 0.0, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'{self.__class__.__name__}': dropout must lie "
                             f"in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.lin = Linear(2 * in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Union[Tensor, PairTensor],
                edge_index: Tensor) -> Tensor:
        x = _pair(self.__class__.__name__, x)
        _check_edges(self.__class__.__name__, edge_index, x)
        # propagate_type: (x: PairTensor)
        agg = self.propagate(edge_index, x=x, size=(x[0].size(0),
                                                    x[1].size(0)))
        return self.lin(torch.cat([agg, x[1]], dim=-1))

    def forward_fixed(self, x: Tensor, x_nbr: Tensor,
                      mask: Optional[Tensor] = None) -> Tensor:
        r"""The same on fixed-size neighbourhoods held densely: :obj:`x`
        the targets :obj:`[n, F]`, :obj:`x_nbr` their neighbours
        :obj:`[n, k, F]`, :obj:`mask` :obj:`[n, k]` the slots that hold a
        neighbour (default: all). Equal to :meth:`forward` on the edges of
        the valid slots (dropout drawn per slot, as per edge there)."""
        _check_fixed(self.__class__.__name__, x, x_nbr, mask)
        x_nbr = F.dropout(x_nbr, p=self.dropout, training=self.training)
        score = torch.bmm(x_nbr, x.unsqueeze(-1)).squeeze(-1)
        if mask is not None:  # rows without any slot stay finite (no NaN)
            empty = ~mask.any(1, keepdim=True)
            score = score.masked_fill(~mask & ~empty, float('-inf'))
        alpha = torch.softmax(score, dim=1)
        if mask is not None:  # a target without neighbours attends to none
            alpha = alpha.masked_fill(~mask, 0.0)
        agg = torch.bmm(alpha.unsqueeze(1), x_nbr).squeeze(1)
        return self.lin(torch.cat([agg, x], dim=-1))

    def message(self, x_i: Tensor, x_j: Tensor, index: Tensor,
                size_i: int) -> Tensor:
        x_j = F.dropout(x_j, p=self.dropout, training=self.training)
        alpha = softmax((x_i * x_j).sum(-1), index, num_nodes=size_i)
        return alpha.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, dropout={self.dropout})')
