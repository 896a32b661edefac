r"""Embedding tables with their rows sharded over the ranks of
:mod:`torch.distributed`: each process holds one contiguous share of the
rows, and so one share of the table's gradient and of the optimizer's state
(Adam's two moments), so that their memory falls as one over the world size.
A lookup sends the ids to the processes that own them and gets the rows
back (two :func:`~torch.distributed.all_to_all_single`); its backward sends
every row's gradient to the owner, which sums them. This is the
row-wise model parallelism of embedding tables (the SageMaker paper's
NCF experiment, TorchRec's row-wise sharding) on this package's models.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_recsys.nn.loss import REG_SCALINGS, bpr_loss

__all__ = ['RowExchange', 'ShardedEmbedding', 'ShardedMF', 'ShardedLightGCN']

_INIT_CHUNK = 1 << 16  # rows drawn per call of the initialiser


def _transport(group) -> torch.device:
    # gloo moves CPU tensors only; NCCL moves CUDA tensors.
    return torch.device('cpu') if dist.get_backend(group) == 'gloo' else \
        torch.device('cuda', torch.cuda.current_device())


class RowExchange:
    r"""The routes by which this process gets the rows :obj:`ids` (sorted,
    distinct, global) of a table split over the ranks of :obj:`group` at
    :obj:`bounds` (rank :obj:`r` holds rows :obj:`bounds[r]:bounds[r+1]`,
    this one from :obj:`start`). Building it is a collective (two
    all-to-alls: the counts and the ids); then :meth:`rows` fetches the
    rows of a table split that way and :meth:`grads` sends gradients of
    them back to their owners, one all-to-all each, as often as needed
    (e.g. once per propagation layer)."""
    def __init__(self, ids: Tensor, bounds: Tensor, start: int, group=None):
        self.group, self.device = group, _transport(group)
        send = torch.diff(torch.searchsorted(ids, bounds.to(ids.device)))
        send = send.to(self.device)
        recv = torch.empty_like(send)
        dist.all_to_all_single(recv, send, group=group)
        self.send, self.recv = send.tolist(), recv.tolist()
        asked = ids.new_empty(sum(self.recv), device=self.device)
        dist.all_to_all_single(asked, ids.to(self.device), self.recv,
                               self.send, group=group)
        self.asked = asked.to(ids.device) - start  # rows others want of ours
        self.num_ids = ids.numel()

    def rows(self, local: Tensor) -> Tensor:
        r"""The rows :obj:`ids` of the table whose share here is
        :obj:`local`."""
        mine = local.index_select(0, self.asked.to(local.device))
        out = mine.new_empty(self.num_ids, local.size(1), device=self.device)
        dist.all_to_all_single(out, mine.to(self.device), self.send,
                               self.recv, group=self.group)
        return out.to(local.device)

    def grads(self, grad: Tensor, num_local: int) -> Tensor:
        r"""The gradient of the local share (:obj:`num_local` rows) from
        every process's gradient :obj:`grad` of its rows :obj:`ids`."""
        got = grad.new_empty(self.asked.numel(), grad.size(1),
                             device=self.device)
        dist.all_to_all_single(got, grad.contiguous().to(self.device),
                               self.recv, self.send, group=self.group)
        out = grad.new_zeros(num_local, grad.size(1))
        return out.index_add_(0, self.asked.to(grad.device),
                              got.to(grad.device))


class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, ids, bounds, start, group):
        ctx.plan, ctx.num_rows = RowExchange(ids, bounds, start, group), \
            weight.size(0)
        return ctx.plan.rows(weight)

    @staticmethod
    def backward(ctx, grad):
        return ctx.plan.grads(grad, ctx.num_rows), None, None, None, None


class ShardedEmbedding(torch.nn.Module):
    r"""A :obj:`[num_embeddings, embedding_dim]` table whose rows are split
    over the ranks of :obj:`group` in contiguous shares
    (:func:`~pyg_recsys.distributed.share_of`): this process holds only its
    share, as the parameter :obj:`weight` (rows :obj:`[start, end)`).

    :meth:`forward` returns the rows of any global ids, of any rank's share;
    it is a collective, as is its backward: every rank of the group calls it
    once per step (with its own ids, possibly none). Each process sends each
    distinct id once, so the bytes moved per lookup are at most
    :math:`2 \cdot \text{distinct ids} \cdot d` values per process, whatever
    the table's size. The gradient of :obj:`weight` is the sum, over every
    rank's lookups, of the gradients of its rows: for a loss that each rank
    weighs by :math:`1/w` (e.g. its share's mean over :math:`w` equal
    shares), the gradient one process gets at the global batch.

    Outside :mod:`torch.distributed` (or in a group of one) it is a plain
    table.

    Args:
        num_embeddings (int): Rows of the whole table.
        embedding_dim (int): Columns.
        init_std (float, optional): Rows are drawn from
            :math:`\mathcal{N}(0, \sigma^2)`, :obj:`65536` at a time from a
            generator seeded with :obj:`seed`, so that the table is the same
            whatever the world size. (default: :obj:`0.1`)
        seed (int, optional): The initialiser's seed. (default: :obj:`0`)
        group (optional): The process group. (default: the default group)
        dtype (torch.dtype, optional): (default: :obj:`torch.float32`)
        device (torch.device, optional): (default: CPU)
    """
    def __init__(self, num_embeddings: int, embedding_dim: int,
                 init_std: float = 0.1, seed: int = 0, group=None,
                 dtype: Optional[torch.dtype] = None, device=None):
        super().__init__()
        from pyg_recsys.distributed import share_of, world
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"ShardedEmbedding: the table must have rows "
                             f"and columns, got [{num_embeddings}, "
                             f"{embedding_dim}]")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.group = group
        self.rank, self.world_size = world(group)
        shares = [share_of(self.num_embeddings, r, self.world_size)
                  for r in range(self.world_size)]
        self.start, self.end = shares[self.rank]
        self.register_buffer(
            'bounds', torch.tensor([a for a, _ in shares] +
                                   [self.num_embeddings]), persistent=False)
        self.weight = torch.nn.Parameter(torch.empty(
            self.end - self.start, self.embedding_dim, dtype=dtype,
            device=device))
        self.init_std, self.seed = float(init_std), int(seed)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        g = torch.Generator().manual_seed(self.seed)
        for a in range(0, self.end, _INIT_CHUNK):  # the chunks up to ours
            b = min(a + _INIT_CHUNK, self.num_embeddings)
            chunk = torch.empty(b - a, self.embedding_dim).normal_(
                0.0, self.init_std, generator=g)
            lo, hi = max(a, self.start), min(b, self.end)
            if lo < hi:
                self.weight[lo - self.start:hi - self.start] = \
                    chunk[lo - a:hi - a].to(self.weight)

    @torch.no_grad()
    def load_full_(self, weight: Tensor) -> 'ShardedEmbedding':
        r"""Copies this process's rows of a whole table :obj:`weight`."""
        if tuple(weight.shape) != (self.num_embeddings, self.embedding_dim):
            raise ValueError(f"ShardedEmbedding.load_full_: expected a "
                             f"[{self.num_embeddings}, {self.embedding_dim}] "
                             f"table, got {tuple(weight.shape)}")
        self.weight.copy_(weight[self.start:self.end])
        return self

    def _check(self, index: Tensor) -> None:
        if index.numel() and (int(index.min()) < 0 or
                              int(index.max()) >= self.num_embeddings):
            raise ValueError(f"ShardedEmbedding: ids must lie in [0, "
                             f"{self.num_embeddings}), got "
                             f"[{int(index.min())}, {int(index.max())}]")

    def lookup(self, index: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        r"""The distinct ids of :obj:`index`, their rows and the position
        of every entry of :obj:`index` among them (a collective)."""
        self._check(index)
        ids, inverse = torch.unique(index.reshape(-1), return_inverse=True)
        if self.world_size == 1:
            return ids, self.weight.index_select(0, ids), inverse
        rows = _Lookup.apply(self.weight, ids, self.bounds, self.start,
                             self.group)
        return ids, rows, inverse

    def forward(self, index: Tensor) -> Tensor:
        r"""The rows of the global ids :obj:`index`, shape
        :obj:`[*index.shape, embedding_dim]` (a collective)."""
        _, rows, inverse = self.lookup(index)
        return rows.index_select(0, inverse).view(*index.shape,
                                                  self.embedding_dim)

    @torch.no_grad()
    def full(self) -> Tensor:
        r"""The whole table on every rank (an all-gather; for evaluation
        and checkpoints, it takes the memory of one whole table)."""
        if self.world_size == 1:
            return self.weight.detach().clone()
        from pyg_recsys.distributed import gather_rows
        shares = list(zip(self.bounds[:-1].tolist(),
                          self.bounds[1:].tolist()))
        return gather_rows(self.weight.detach(), shares, self.group)

    def extra_repr(self) -> str:
        return (f'{self.num_embeddings}, {self.embedding_dim}, rows '
                f'[{self.start}, {self.end}) of rank {self.rank} / '
                f'{self.world_size}')


class ShardedMF(torch.nn.Module):
    r"""BPR matrix factorisation (as :class:`~pyg_recsys.nn.models.MF`)
    with its node table row-sharded over the processes
    (:class:`ShardedEmbedding`): per process, the table, its gradient and
    Adam's state of it take :math:`1/w` of their single-process memory.

    Trained by :class:`~pyg_recsys.train.Trainer` under
    :mod:`torch.distributed` as the data-parallel models are (each process
    draws its share of the global batch), but with no gradient all-reduce:
    the lookups' backward delivers every row's gradient to its owner, and
    the Trainer weighs each process's loss by :math:`1/w`, so that a step
    equals one process's step at the global batch (to rounding). The L2
    penalties are those of :func:`~pyg_recsys.nn.loss.l2_reg_rows` on the
    looked-up ego rows. Checkpoints hold the whole table (gathered) and
    load as the plain model in one process.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): (default: :obj:`64`)
        init_std (float, optional): (default: :obj:`0.1`)
        seed (int, optional): The table initialiser's seed (the table is the
            same whatever the world size). (default: :obj:`0`)
        group (optional): The process group. (default: the default group)
    """
    sharded = True  # the Trainer: no DDP, each loss weighed by 1 / world
    checkpoint_model = 'mf'  # its checkpoints load as MF in one process

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, init_std: float = 0.1,
                 seed: int = 0, group=None):
        super().__init__()
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.num_nodes = self.num_users + self.num_items
        self.embedding_dim = int(embedding_dim)
        self.embedding = ShardedEmbedding(self.num_nodes, embedding_dim,
                                          init_std, seed, group)
        # The arguments of the plain model its checkpoints load as.
        self.init_kwargs = {'num_users': num_users, 'num_items': num_items,
                            'embedding_dim': embedding_dim,
                            'init_std': init_std}

    def _state_keys(self):
        return {'embedding.weight'}

    def state_dict(self, *args, **kwargs) -> Dict[str, Tensor]:
        r"""The plain model's state, with the whole table as
        :obj:`'embedding.weight'` (an all-gather, so a collective; it takes
        one whole table's memory)."""
        state = {k: v.detach().clone() for k, v in self.named_buffers()
                 if k in self._state_keys()}
        state['embedding.weight'] = self.embedding.full()
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign=False):
        r"""Takes this process's rows of a plain model's state."""
        if strict and set(state_dict) != self._state_keys():
            raise ValueError(f"{self.__class__.__name__}: expected the keys "
                             f"{sorted(self._state_keys())}, got "
                             f"{sorted(state_dict)}")
        self.embedding.load_full_(state_dict['embedding.weight'])
        for key, buf in self.named_buffers():
            if key in state_dict and key in self._state_keys():
                buf.copy_(state_dict[key])

    def final_local(self, edge_index) -> Tensor:
        r"""This process's rows of the final node table (MF: the table)."""
        return self.embedding.weight

    @torch.no_grad()
    def get_embedding(self, edge_index=None, edge_weight=None) -> Tensor:
        r"""The whole final node table, on every process (a collective, no
        gradient)."""
        from pyg_recsys.distributed import gather_rows
        e = self.embedding
        shares = list(zip(e.bounds[:-1].tolist(), e.bounds[1:].tolist()))
        if e.world_size == 1:
            return self.final_local(edge_index).detach().clone()
        return gather_rows(self.final_local(edge_index).detach(), shares,
                           e.group)

    def _rows(self, table: Tensor, ids: Tensor) -> Tensor:
        e = self.embedding
        if e.world_size == 1:
            return table.index_select(0, ids)
        return _Lookup.apply(table, ids, e.bounds, e.start, e.group)

    def training_loss(self, edge_index, users: Tensor, pos: Tensor,
                      neg: Tensor, lambda_reg: float = 1e-4,
                      reg_scaling: str = 'lightgcn',
                      hard_negatives: bool = False
                      ) -> Tuple[Tensor, Dict[str, float]]:
        r"""BPR of this process's triples (node ids, :obj:`neg` of shape
        :obj:`[B]` or :obj:`[B, M]`) and the L2 penalty of their ego rows,
        from sharded lookups (a collective)."""
        if hard_negatives:
            raise ValueError(f"{self.__class__.__name__}: hard negatives are "
                             f"not supported")
        if reg_scaling not in REG_SCALINGS:
            raise ValueError(f"{self.__class__.__name__}: unknown "
                             f"reg_scaling '{reg_scaling}' (expected one of "
                             f"{REG_SCALINGS})")
        if users.shape != pos.shape or users.size(0) != neg.size(0):
            raise ValueError(f"{self.__class__.__name__}: users, positives "
                             f"and negatives must have the same length")
        index = torch.cat([users, pos, neg.reshape(-1)])
        self.embedding._check(index)
        ids, inverse = torch.unique(index, return_inverse=True)
        final = self.final_local(edge_index)
        ego = self._rows(self.embedding.weight, ids)
        rows = ego if final is self.embedding.weight else \
            self._rows(final, ids)
        u, p, n = rows.index_select(0, inverse).split(
            [users.numel(), users.numel(), neg.numel()])
        n = n.view(*neg.shape, -1)
        pos_score = (u * p).sum(-1)
        neg_score = (u.unsqueeze(-2) * n).sum(-1) if neg.dim() == 2 \
            else (u * n).sum(-1)
        loss = bpr_loss(pos_score, neg_score)
        if not users.numel():  # an empty share adds nothing
            loss = loss.nan_to_num(0.0)
        reg = loss.new_zeros(())
        if lambda_reg and index.numel():
            count = torch.bincount(inverse, minlength=ids.numel())
            if reg_scaling == 'pyg':
                count = count.clamp_(max=1)
            coef = {'lightgcn': 0.5 / users.numel(), 'dccf': 1.0,
                    'pyg': 1.0 / users.numel()}[reg_scaling]
            reg = lambda_reg * coef * (ego.pow(2).sum(-1) @
                                       count.to(ego.dtype))
        return loss + reg, {'bpr': float(loss.detach()),
                            'reg': float(reg.detach())}

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, '
                f'embedding_dim={self.embedding_dim}, '
                f'world_size={self.embedding.world_size})')


class ShardedLightGCN(ShardedMF):
    r"""LightGCN (as :class:`~pyg_recsys.nn.models.LightGCN` with a
    bipartite graph) with its node table row-sharded over the processes as
    in :class:`ShardedMF`, and its propagation partitioned the same way
    (:class:`~pyg_recsys.distributed.PartitionedPropagation` on the table's
    shares): each process propagates its rows, fetching per layer the halo
    rows its block of the adjacency reads (or, with
    :obj:`exchange='all_gather'`, the whole layer input), and backward runs
    the transpose the same way. Per process, the table, its gradient and
    Adam's state take :math:`1/w` of their single-process memory; the
    propagation's activations are this process's rows plus its halo.
    Checkpoints load as :class:`~pyg_recsys.nn.models.LightGCN`.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items.
        embedding_dim (int, optional): (default: :obj:`64`)
        num_layers (int, optional): (default: :obj:`3`)
        alpha (float or list, optional): Layer weights (default:
            :math:`1 / (L + 1)` each).
        init_std (float, optional): (default: :obj:`0.1`)
        seed (int, optional): The initialiser's seed. (default: :obj:`0`)
        group (optional): The process group.
        exchange (str, optional): :obj:`'halo'` or :obj:`'all_gather'`.
            (default: :obj:`'halo'`)
    """
    checkpoint_model = 'lightgcn'

    def __init__(self, num_users: int, num_items: int,
                 embedding_dim: int = 64, num_layers: int = 3,
                 alpha=None, init_std: float = 0.1, seed: int = 0,
                 group=None, exchange: str = 'halo'):
        super().__init__(num_users, num_items, embedding_dim, init_std, seed,
                         group)
        from pyg_recsys.ops.propagate import _weights
        self.num_layers = int(num_layers)
        self.register_buffer('alpha', torch.tensor(
            _weights(self.num_layers, alpha)))
        if exchange not in ('halo', 'all_gather'):
            raise ValueError(f"ShardedLightGCN: unknown exchange "
                             f"'{exchange}' (expected 'halo' or "
                             f"'all_gather')")
        self.exchange = exchange
        self.init_kwargs.pop('init_std')
        self.init_kwargs.update(num_layers=num_layers)
        self._propagation = None  # (adjacency, its PartitionedPropagation)

    def _state_keys(self):
        return {'embedding.weight', 'alpha'}

    def final_local(self, edge_index) -> Tensor:
        from pyg_recsys.distributed.propagate import PartitionedPropagation
        if edge_index is None:
            raise ValueError("ShardedLightGCN needs the normalised adjacency "
                             "to propagate")
        if self.embedding.world_size == 1:
            from pyg_recsys.ops import light_propagate
            return light_propagate(edge_index, self.embedding.weight,
                                   self.num_layers, self.alpha.tolist())
        if self._propagation is None or self._propagation[0] is not \
                edge_index:
            e = self.embedding
            shares = list(zip(e.bounds[:-1].tolist(),
                              e.bounds[1:].tolist()))
            self._propagation = (edge_index, PartitionedPropagation(
                edge_index, shares, e.group, self.exchange))
        return self._propagation[1](self.embedding.weight, self.num_layers,
                                    self.alpha.tolist())
