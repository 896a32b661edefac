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

__all__ = ['ShardedEmbedding', 'ShardedMF']

_INIT_CHUNK = 1 << 16  # rows drawn per call of the initialiser


def _transport(group) -> torch.device:
    # gloo moves CPU tensors only; NCCL moves CUDA tensors.
    return torch.device('cpu') if dist.get_backend(group) == 'gloo' else \
        torch.device('cuda', torch.cuda.current_device())


class _RowExchange(torch.autograd.Function):
    # Rows `ids` (sorted, distinct, global) of a table whose share
    # [start, start + weight.size(0)) this process holds as `weight`.
    @staticmethod
    def forward(ctx, weight, ids, bounds, start, group):
        device = _transport(group)
        send = torch.diff(torch.searchsorted(ids, bounds.to(ids.device)))
        send = send.to(device)
        recv = torch.empty_like(send)
        dist.all_to_all_single(recv, send, group=group)
        send_l, recv_l = send.tolist(), recv.tolist()
        asked = ids.new_empty(sum(recv_l), device=device)
        dist.all_to_all_single(asked, ids.to(device), recv_l, send_l,
                               group=group)
        local = asked.to(weight.device) - start
        rows = weight.index_select(0, local).to(device)
        out = rows.new_empty(ids.numel(), weight.size(1))
        dist.all_to_all_single(out, rows, send_l, recv_l, group=group)
        ctx.save_for_backward(local)
        ctx.splits, ctx.group = (send_l, recv_l), group
        ctx.num_rows, ctx.device = weight.size(0), weight.device
        return out.to(weight.device)

    @staticmethod
    def backward(ctx, grad):
        local, = ctx.saved_tensors
        send_l, recv_l = ctx.splits
        device = _transport(ctx.group)
        got = grad.new_empty(local.numel(), grad.size(1), device=device)
        dist.all_to_all_single(got, grad.contiguous().to(device), recv_l,
                               send_l, group=ctx.group)
        out = grad.new_zeros(ctx.num_rows, grad.size(1), device=ctx.device)
        out.index_add_(0, local, got.to(ctx.device))
        return out, None, None, None, None


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
        rows = _RowExchange.apply(self.weight, ids, self.bounds,
                                  self.start, self.group)
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
    looked-up ego rows.

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
        # The arguments of the MF its checkpoints load as.
        self.init_kwargs = {'num_users': num_users, 'num_items': num_items,
                            'embedding_dim': embedding_dim,
                            'init_std': init_std}

    def state_dict(self, *args, **kwargs) -> Dict[str, Tensor]:
        r"""MF's state: the whole table as :obj:`'embedding.weight'` (an
        all-gather, so a collective; it takes one whole table's memory)."""
        return {'embedding.weight': self.embedding.full()}

    def load_state_dict(self, state_dict, strict: bool = True, assign=False):
        r"""Takes this process's rows of an MF state (the whole table)."""
        if strict and set(state_dict) != {'embedding.weight'}:
            raise ValueError(f"ShardedMF: expected an MF state "
                             f"('embedding.weight'), got {sorted(state_dict)}")
        self.embedding.load_full_(state_dict['embedding.weight'])

    def get_embedding(self, edge_index=None, edge_weight=None) -> Tensor:
        r"""The whole node table, on every process (no gradient)."""
        return self.embedding.full()

    def training_loss(self, edge_index, users: Tensor, pos: Tensor,
                      neg: Tensor, lambda_reg: float = 1e-4,
                      reg_scaling: str = 'lightgcn',
                      hard_negatives: bool = False
                      ) -> Tuple[Tensor, Dict[str, float]]:
        r"""BPR of this process's triples (node ids, :obj:`neg` of shape
        :obj:`[B]` or :obj:`[B, M]`) and the L2 penalty of their ego rows,
        from one sharded lookup (a collective)."""
        if hard_negatives:
            raise ValueError("ShardedMF: hard negatives are not supported")
        if reg_scaling not in REG_SCALINGS:
            raise ValueError(f"ShardedMF: unknown reg_scaling "
                             f"'{reg_scaling}' (expected one of "
                             f"{REG_SCALINGS})")
        if users.shape != pos.shape or users.size(0) != neg.size(0):
            raise ValueError("ShardedMF: users, positives and negatives "
                             "must have the same length")
        index = torch.cat([users, pos, neg.reshape(-1)])
        _, rows, inverse = self.embedding.lookup(index)
        u, p, n = rows.index_select(0, inverse).split(
            [users.numel(), users.numel(), neg.numel()])
        n = n.view(*neg.shape, -1)
        pos_score = (u * p).sum(-1)
        neg_score = (u.unsqueeze(-2) * n).sum(-1) if neg.dim() == 2 \
            else (u * n).sum(-1)
        loss = bpr_loss(pos_score, neg_score)
        reg = loss.new_zeros(())
        if lambda_reg and index.numel():
            count = torch.bincount(inverse, minlength=rows.size(0))
            if reg_scaling == 'pyg':
                count = count.clamp_(max=1)
            coef = {'lightgcn': 0.5 / max(users.numel(), 1), 'dccf': 1.0,
                    'pyg': 1.0 / max(users.numel(), 1)}[reg_scaling]
            reg = lambda_reg * coef * (rows.pow(2).sum(-1) @
                                       count.to(rows.dtype))
        if not users.numel():  # an empty share adds nothing
            loss = loss.nan_to_num(0.0)
        total = loss + reg
        return total, {'bpr': float(loss.detach()),
                       'reg': float(reg.detach())}

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_users={self.num_users}, '
                f'num_items={self.num_items}, '
                f'embedding_dim={self.embedding_dim}, '
                f'world_size={self.embedding.world_size})')

