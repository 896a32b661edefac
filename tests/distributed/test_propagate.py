import datetime

import pytest
import torch
import torch.distributed as dist
from _util import free_port, spawn

from pyg_recsys.distributed import partitioned_propagate, row_partition
from pyg_recsys.ops import light_propagate

N, D, LAYERS = 37, 5, 3


def problem(symmetric):
    g = torch.Generator().manual_seed(4)
    dense = torch.rand(N, N, generator=g, dtype=torch.float64)
    dense[torch.rand(N, N, generator=g) > 0.15] = 0
    dense[5] = 0  # an empty row
    if symmetric:
        dense = dense + dense.t()
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    w = torch.randn(N, D, generator=g, dtype=torch.float64)  # loss weights
    return dense, x, w


def _worker(rank, world_size, port, out, symmetric, exchange):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        dense, x, w = problem(symmetric)
        adj = dense.to_sparse_csr()
        r0, r1 = row_partition(adj.crow_indices(), world_size)[rank]
        x_local = x[r0:r1].clone().requires_grad_()
        out_local = partitioned_propagate(adj, x_local, LAYERS,
                                          [.4, .3, .2, .1], exchange=exchange)
        (out_local * w[r0:r1]).sum().backward()  # the ranks' terms add up
        torch.save({'rows': (r0, r1), 'out': out_local.detach(),
                    'grad': x_local.grad}, f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def test_row_partition_balances_work():
    rowptr = torch.tensor([0, 10, 10, 11, 12, 13, 14, 30])
    parts = row_partition(rowptr, 3)
    assert parts[0][0] == 0 and parts[-1][1] == 7
    assert all(b == c for (_, b), (c, _) in zip(parts, parts[1:]))
    assert row_partition(rowptr, 1) == [(0, 7)]
    with pytest.raises(ValueError, match='positive'):
        row_partition(rowptr, 0)


@pytest.mark.parametrize('world_size,symmetric,exchange', [
    (2, False, 'halo'), (3, True, 'halo'), (3, False, 'halo'),
    (3, False, 'all_gather')])
def test_partitioned_equals_single_process(tmp_path, world_size, symmetric,
                                           exchange):
    spawn(_worker, (world_size, free_port(), str(tmp_path), symmetric,
                    exchange), world_size)
    dense, x, w = problem(symmetric)
    # Independent reference: dense powers of A.
    xr = x.clone().requires_grad_()
    alpha, y, power = [.4, .3, .2, .1], 0, xr
    for k in range(LAYERS + 1):
        y = y + alpha[k] * power
        power = dense @ power
    (y * w).sum().backward()
    assert torch.allclose(light_propagate(dense.to_sparse_csr(), x, LAYERS,
                                          alpha), y.detach())
    for rank in range(world_size):
        got = torch.load(tmp_path / f'rank{rank}.pt')
        r0, r1 = got['rows']
        torch.testing.assert_close(got['out'], y.detach()[r0:r1])
        torch.testing.assert_close(got['grad'], xr.grad[r0:r1])


def test_unknown_exchange():
    dense, x, _ = problem(False)
    with pytest.raises(ValueError, match="unknown exchange 'ring'"):
        partitioned_propagate(dense.to_sparse_csr(), x, LAYERS,
                              exchange='ring')
