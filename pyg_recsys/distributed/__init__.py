r"""Running :obj:`pyg_recsys` on several processes with
:mod:`torch.distributed` (gloo on CPU, NCCL on GPU; launched by
:obj:`torchrun`). Nothing here opens a transport of its own: every exchange
is a :mod:`torch.distributed` collective on the default (or a given)
process group.

* :func:`evaluate`: exact full-ranking evaluation with the evaluated users
  split over the ranks; every rank gets the metrics that one process would
  compute, bit for bit.
* :func:`partitioned_propagate`: light propagation with the node table's
  rows partitioned over the ranks (:func:`row_partition`).
* :class:`ShardedEmbedding`, :class:`ShardedMF`: tables whose rows (and
  so gradients and optimizer state) are split over the ranks.
* Data-parallel training: :class:`~pyg_recsys.train.Trainer` under
  :obj:`torchrun`.
"""
from typing import Dict, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_recsys.metrics import Evaluator

__all__ = ['evaluate', 'share_of', 'world', 'partitioned_propagate',
           'row_partition', 'PartitionedPropagation', 'ShardedEmbedding',
           'ShardedMF', 'ShardedLightGCN']


def world(group=None) -> Tuple[int, int]:
    r"""This process's rank and the world size of :obj:`group` (the default
    group), or :obj:`(0, 1)` when :mod:`torch.distributed` is not
    initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def share_of(num_rows: int, rank: int, world_size: int,
             block: int = 1) -> Tuple[int, int]:
    r"""The rows :obj:`(start, end)` of :obj:`rank` when :obj:`num_rows`
    rows are split into :obj:`world_size` contiguous shares of whole
    :obj:`block`-row blocks, as equal as that allows (later ranks may get
    one block fewer, or nothing when there are fewer blocks than ranks)."""
    if world_size <= 0 or not 0 <= rank < world_size:
        raise ValueError(f"share_of: rank {rank} is not in a world of "
                         f"{world_size}")
    if block <= 0 or num_rows < 0:
        raise ValueError("share_of: block must be positive and num_rows "
                         "non-negative")
    blocks = -(-num_rows // block)
    per, extra = divmod(blocks, world_size)
    first = rank * per + min(rank, extra)
    last = first + per + (1 if rank < extra else 0)
    return min(first * block, num_rows), min(last * block, num_rows)


@torch.no_grad()
def evaluate(evaluator: Evaluator, user_emb: Tensor, item_emb: Tensor,
             group=None) -> Dict[str, float]:
    r"""The metrics of :meth:`Evaluator.evaluate`, with the ranking split
    over the ranks of :obj:`group`: each rank ranks a contiguous share of the
    evaluated users (whole score batches of the evaluator, so that every
    product and top-:math:`k` is the one a single process computes), the
    top-:math:`k` lists are all-gathered, and every rank computes the
    metrics from the full lists. The result is identical to the
    single-process one on every rank. Every rank must call it with the same
    embeddings (e.g. after a data-parallel step, where they are replicated).

    Outside :mod:`torch.distributed` (or with one process) this is
    :meth:`Evaluator.evaluate`.
    """
    rank, size = world(group)
    if size == 1:
        return evaluator.evaluate(user_emb, item_emb)
    n = evaluator.num_eval_users
    shares = [share_of(n, r, size, evaluator.batch_size) for r in range(size)]
    start, end = shares[rank]
    index = evaluator.rank(user_emb, item_emb, rows=(start, end))
    return evaluator.metrics_of(gather_rows(index, shares, group))


from pyg_recsys.distributed.propagate import (  # noqa: E402
    PartitionedPropagation,
    gather_rows,
    partitioned_propagate,
    row_partition,
)
from pyg_recsys.distributed.sharded import (  # noqa: E402
    ShardedEmbedding,
    ShardedLightGCN,
    ShardedMF,
)
