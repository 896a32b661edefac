from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_recsys.data.neighbor import sample_fixed_neighbors
from pyg_recsys.nn.conv import BGCFAttentionConv, BGCFMeanConv
from pyg_recsys.nn.models.base import EmbeddingRecommender

# Seed offsets of the streams derived from the model's seed.
_GRAPH_STREAM = 1 << 20   # the sampled graphs, drawn once
_STEP_STREAM = 1 << 40    # the neighbour draws of training step t: + t
_EVAL_STREAM = 1 << 50    # the inference passes


def _node_csr(users: Tensor, items: Tensor, num_users: int,
              num_items: int) -> Tuple[Tensor, Tensor]:
    r"""The homogeneous neighbour lists of the bipartite pairs: user
    :math:`u`'s items as node ids :math:`U + i`, item :math:`i`'s users."""
    n = num_users + num_items
    src = torch.cat([users, items + num_users])
    dst = torch.cat([items + num_users, users])
    order = torch.argsort(src * n + dst)
    src, dst = src[order], dst[order]
    rowptr = torch.zeros(n + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(src, minlength=n), 0, out=rowptr[1:])
    return rowptr, dst


class BGCF(EmbeddingRecommender):
    r"""The Bayesian graph convolutional network of the `"A Framework for
    Recommending Accurate and Diverse Items Using Bayesian Graph
    Convolutional Neural Networks" <https://doi.org/10.1145/3394486.3403254>`_
    paper (BGCF, Sun et al., KDD 2020), as its official code (MindSpore model
    zoo, :obj:`research/gnn/bgcf`) builds and trains it.

    A graph generator (:class:`~pyg_recsys.data.NodeCopying`, BGCF's own, or
    :class:`~pyg_recsys.data.PECO`) fitted to the observed training graph
    :math:`\mathcal{G}_{obs}` draws :obj:`num_graphs` graphs
    :math:`\mathcal{G}_1, \dots` once. Every node :math:`v` of a batch draws
    :math:`k_o` neighbours with replacement from :math:`\mathcal{G}_{obs}`
    (:math:`\mathcal{N}_o(v)`) and :math:`k_s` from the current sampled graph
    (:math:`\mathcal{N}_s(v)`), and its representation is

    .. math::
        \mathbf{z}_v = \tanh\big[\, \mathrm{Mean}_{t(v)}(\mathbf{e}_v,
        \mathcal{N}_o(v)) \,\Vert\, \mathrm{Mean}_s(\mathbf{e}_v,
        \mathcal{N}_s(v)) \,\Vert\, \mathrm{Att}_{t(v)}(\mathbf{e}_v,
        \mathcal{N}_o(v) \cup \mathcal{N}_s(v)) \,\big],

    with :class:`~pyg_recsys.nn.conv.BGCFMeanConv` (one per node type
    :math:`t(v)` on the observed graph, one shared on the sampled graph) and
    :class:`~pyg_recsys.nn.conv.BGCFAttentionConv` (one per node type), all
    on the layer-0 embeddings :math:`\mathbf{e}`. Training scores a pair by
    :math:`[\mathbf{z}_u \Vert \mathbf{e}_u]^{\top} [\mathbf{z}_i \Vert
    \mathbf{e}_i]`; the loss of a batch of :math:`B` positives with
    :math:`M` negatives each is BGCF's

    .. math::
        \sum_{b=1}^{B} \sum_{m=1}^{M} -\log\sigma(s_{u_b i_b} - s_{u_b j_{bm}})
        + \frac{\lambda}{2} \sum_b \Big( \|\mathbf{r}_{u_b}\|^2 +
        \|\mathbf{r}_{i_b}\|^2 + \sum_m \|\mathbf{r}_{j_{bm}}\|^2 \Big),

    a **sum**, with :math:`\mathbf{r} = [\mathbf{z} \Vert \mathbf{e}]` and
    :math:`\lambda` the trainer's :obj:`lambda_reg` (BGCF: 0.03,
    :obj:`reg_scaling='bgcf'`). Graph :math:`g` serves the steps
    :math:`[g s, (g + 1) s)` modulo :obj:`num_graphs` (:math:`s =`
    :obj:`steps_per_graph`, one epoch in BGCF). At inference,
    :math:`\mathbf{z}` alone is averaged over :obj:`num_eval_passes` passes,
    each on a sampled graph drawn at random with fresh neighbours, and
    scores are dot products of the averages.

    Deviations from the official code (which runs in float16 on Ascend):
    float32; BGCF's distance term on nearest-neighbour user pairs (on
    Ascend only; its GPU script sets it to 0) is left out; a node without
    neighbours in a graph gets a zero mean and attends to nothing (the code
    substitutes node 0); every node of a batch draws its own neighbours (as
    the code does), so a negative item drawn twice is sampled twice.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        generator: A fitted :class:`~pyg_recsys.data.NodeCopying` or
            :class:`~pyg_recsys.data.PECO` (its training pairs are the
            observed graph).
        embedding_dim (int, optional): The size of :math:`\mathbf{e}`.
            (default: :obj:`64`)
        out_channels (int, optional): The size of each aggregator's output;
            :math:`\mathbf{z}` has three times that. (default: :obj:`64`)
        num_neighbors (int, optional): :math:`k_o`. (default: :obj:`40`)
        num_sampled_neighbors (int, optional): :math:`k_s`.
            (default: :obj:`20`)
        dropout (sequence of float, optional): Dropout of the observed-graph
            mean, the sampled-graph mean and the attention neighbours.
            (default: :obj:`(0.0, 0.2, 0.3)`)
        num_graphs (int, optional): Sampled graphs drawn. (default: :obj:`5`)
        steps_per_graph (int, optional): Training steps on each graph before
            the next. (default: :obj:`1`)
        num_eval_passes (int, optional): Inference passes averaged.
            (default: :obj:`50`)
        seed (int, optional): Seed of the graphs and neighbour draws.
            (default: :obj:`0`)
        share_neighbors (bool, optional): A deviation for speed: the
            occurrences of a node within a batch share one neighbour draw
            (each occurrence's representation has the same distribution, so
            the loss and its gradient keep their expectations; BGCF draws
            per occurrence). (default: :obj:`False`)
    """
    def __init__(self, num_users: int, num_items: int, generator,
                 embedding_dim: int = 64, out_channels: int = 64,
                 num_neighbors: int = 40, num_sampled_neighbors: int = 20,
                 dropout: Sequence[float] = (0.0, 0.2, 0.3),
                 num_graphs: int = 5, steps_per_graph: int = 1,
                 num_eval_passes: int = 50, seed: int = 0,
                 share_neighbors: bool = False):
        super().__init__(num_users, num_items, embedding_dim, init_std=None)
        name = self.__class__.__name__
        if (generator.num_users, generator.num_items) != (num_users,
                                                          num_items):
            raise ValueError(f"{name}: the generator was fitted to "
                             f"{generator.num_users} users and "
                             f"{generator.num_items} items, not {num_users} "
                             f"and {num_items}")
        for key, value in (('out_channels', out_channels),
                           ('num_neighbors', num_neighbors),
                           ('num_sampled_neighbors', num_sampled_neighbors),
                           ('num_graphs', num_graphs),
                           ('steps_per_graph', steps_per_graph),
                           ('num_eval_passes', num_eval_passes)):
            if int(value) != value or int(value) < 1:
                raise ValueError(f"{name}: {key} must be a positive integer, "
                                 f"got {value}")
        dropout = tuple(float(p) for p in dropout)
        if len(dropout) != 3:
            raise ValueError(f"{name}: dropout needs three probabilities "
                             f"(observed mean, sampled mean, attention), got "
                             f"{dropout}")
        self.generator = generator
        self.out_channels = int(out_channels)
        self.num_neighbors = int(num_neighbors)
        self.num_sampled_neighbors = int(num_sampled_neighbors)
        self.dropout = dropout
        self.num_graphs = int(num_graphs)
        self.steps_per_graph = int(steps_per_graph)
        self.num_eval_passes = int(num_eval_passes)
        self.seed = int(seed)
        self.share_neighbors = bool(share_neighbors)
        d, c = int(embedding_dim), self.out_channels
        self.user_mean = BGCFMeanConv(d, c, dropout=dropout[0])
        self.item_mean = BGCFMeanConv(d, c, dropout=dropout[0])
        self.sampled_mean = BGCFMeanConv(d, c, dropout=dropout[1])
        self.user_att = BGCFAttentionConv(d, c, dropout=dropout[2])
        self.item_att = BGCFAttentionConv(d, c, dropout=dropout[2])
        self.register_buffer('step', torch.zeros((), dtype=torch.long))
        pairs = generator.pairs
        self.observed = _node_csr(pairs[0], pairs[1], num_users, num_items)
        self.sampled = [
            _node_csr(*generator.sample(seed=self.seed + _GRAPH_STREAM + g),
                      num_users, num_items)
            for g in range(self.num_graphs)]
        self.reset_parameters()

    def reset_parameters(self):
        r"""Xavier-uniform embeddings and weights, as BGCF's code."""
        torch.nn.init.xavier_uniform_(self.embedding.weight)
        for conv in (self.user_mean, self.item_mean, self.sampled_mean,
                     self.user_att, self.item_att):
            conv.reset_parameters()
        self.step.zero_()

    @property
    def graph_index(self) -> int:
        r"""The sampled graph of the current training step."""
        return (int(self.step) // self.steps_per_graph) % self.num_graphs

    def _csr_to(self, csr, device):
        return tuple(t.to(device) for t in csr)

    def representation(self, nodes: Tensor, graph: int,
                       generator: Optional[torch.Generator] = None
                       ) -> Tensor:
        r""":math:`\mathbf{z}` of :obj:`nodes` (node ids, all users or all
        items), shape :obj:`[n, 3 * out_channels]`, with fresh neighbours
        from the observed graph and sampled graph :obj:`graph`."""
        if nodes.numel() == 0:
            return self.embedding.weight.new_zeros(0, 3 * self.out_channels)
        users = int(nodes[0]) < self.num_users
        if bool(((nodes < self.num_users) != users).any()):
            raise ValueError("BGCF.representation: nodes must be all users "
                             "or all items")
        device = self.embedding.weight.device
        rowptr, col = self._csr_to(self.observed, nodes.device)
        raw = sample_fixed_neighbors(rowptr, col, nodes, self.num_neighbors,
                                     generator)
        rowptr, col = self._csr_to(self.sampled[graph], nodes.device)
        smp = sample_fixed_neighbors(rowptr, col, nodes,
                                     self.num_sampled_neighbors, generator)
        # One gather of the k_o + k_s neighbours; the three aggregators read
        # the same block (their fixed-neighbourhood paths).
        nbr = torch.cat([raw, smp], dim=1).to(device)
        mask = nbr >= 0
        x = self.embedding.weight
        h = x.index_select(0, nbr.clamp(min=0).view(-1)).view(
            *nbr.shape, x.size(1))
        xt = x.index_select(0, nodes.to(device))
        k = self.num_neighbors
        mean = self.user_mean if users else self.item_mean
        att = self.user_att if users else self.item_att
        return torch.tanh(torch.cat([
            mean.forward_fixed(xt, h[:, :k], mask[:, :k]),
            self.sampled_mean.forward_fixed(xt, h[:, k:], mask[:, k:]),
            att.forward_fixed(xt, h, mask)], dim=-1))

    def training_loss(self, edge_index, users: Tensor, pos: Tensor,
                      neg: Tensor, lambda_reg: float = 0.03,
                      reg_scaling: str = 'bgcf', hard_negatives: bool = False,
                      n_id=None) -> Tuple[Tensor, Dict[str, float]]:
        r"""BGCF's loss of the batch (see the class documentation) on the
        current sampled graph; :obj:`edge_index` (the observed graph the
        trainer passes) is not used, the observed graph being the
        generator's. In training mode each call is one step."""
        name = self.__class__.__name__
        if reg_scaling != 'bgcf':
            raise ValueError(f"{name} regularises its output representations "
                             f"as BGCF does: train it with reg_scaling="
                             f"'bgcf', got '{reg_scaling}'")
        if hard_negatives or n_id is not None:
            raise ValueError(f"{name} trains on its own sampled "
                             f"neighbourhoods (no hard negatives, no "
                             f"subgraphs)")
        self._check_batch(users, pos, neg)
        neg = neg.view(neg.size(0), -1)
        g = torch.Generator(device=users.device).manual_seed(
            self.seed + _STEP_STREAM + int(self.step))
        graph = self.graph_index
        x = self.embedding.weight
        items = torch.cat([pos, neg.reshape(-1)])
        if self.share_neighbors:
            uu, u_inv = torch.unique(users, return_inverse=True)
            ii, i_inv = torch.unique(items, return_inverse=True)
            z_u = self.representation(uu, graph, g)[u_inv]
            z_i = self.representation(ii, graph, g)[i_inv]
        else:
            z_u = self.representation(users, graph, g)
            z_i = self.representation(items, graph, g)
        r_u = torch.cat([z_u, x.index_select(0, users)], dim=-1)
        r_i = torch.cat([z_i, x.index_select(0, items)], dim=-1)
        r_p, r_n = r_i.split([pos.numel(), neg.numel()])
        r_n = r_n.view(neg.size(0), neg.size(1), -1)
        pos_score = (r_u * r_p).sum(-1, keepdim=True)
        neg_score = (r_u.unsqueeze(1) * r_n).sum(-1)
        bpr = F.softplus(neg_score - pos_score).sum()
        reg = 0.5 * lambda_reg * (r_u.pow(2).sum() + r_i.pow(2).sum())
        if self.training:
            self.step += 1
        return bpr + reg, {'bpr': float(bpr.detach()),
                           'reg': float(reg.detach())}

    @torch.no_grad()
    def get_embedding(self, edge_index=None, edge_weight=None,
                      batch_size: int = 8192) -> Tensor:
        r"""The inference representations of all nodes,
        :obj:`[N, 3 * out_channels]`: :math:`\mathbf{z}` averaged over
        :obj:`num_eval_passes` passes (BGCF's test protocol); the dot product
        of a user's and an item's is their score. :obj:`edge_index` is not
        used."""
        out = self.embedding.weight.new_zeros(self.num_nodes,
                                              3 * self.out_channels)
        g = torch.Generator().manual_seed(self.seed + _EVAL_STREAM)
        device = self.embedding.weight.device
        spans = ((0, self.num_users), (self.num_users, self.num_nodes))
        for _ in range(self.num_eval_passes):
            graph = int(torch.randint(self.num_graphs, (1, ), generator=g))
            for lo, hi in spans:
                for start in range(lo, hi, batch_size):
                    nodes = torch.arange(start, min(hi, start + batch_size))
                    out[start:start + nodes.numel()] += self.representation(
                        nodes, graph, g).to(device)
        return out / self.num_eval_passes

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_users}, '
                f'{self.num_items}, embedding_dim={self.embedding_dim}, '
                f'out_channels={self.out_channels}, '
                f'num_neighbors={self.num_neighbors}, '
                f'num_sampled_neighbors={self.num_sampled_neighbors}, '
                f'generator={self.generator.__class__.__name__}, '
                f'epsilon={self.generator.epsilon})')

