import datetime

import pytest
import torch
import torch.distributed as dist
from _util import free_port, spawn
from graphs import clustered_graph

from pyg_recsys.distributed import evaluate, share_of, world
from pyg_recsys.metrics import Evaluator


def embeddings(graph):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(graph.num_users, 8, generator=g),
            torch.randn(graph.num_items, 8, generator=g))


def _worker(rank, world_size, port, out, batch_size):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        torch.set_num_threads(1)
        graph = clustered_graph()
        ev = Evaluator(graph, 'test', ks=(5, 10), batch_size=batch_size)
        torch.save({'world': world(), 'metrics': evaluate(
            ev, *embeddings(graph))}, f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def test_share_of_covers_rows_in_whole_blocks():
    for n, size, block in ((40, 3, 7), (5, 4, 2), (0, 2, 3), (10, 1, 4)):
        shares = [share_of(n, r, size, block) for r in range(size)]
        assert shares[0][0] == 0 and shares[-1][1] == n
        for (a, b), (c, _) in zip(shares, shares[1:]):
            assert b == c and (a % block == 0 or a == n)
    assert share_of(5, 3, 4, 2) == (5, 5)  # 3 blocks, 4 ranks: one empty
    with pytest.raises(ValueError, match='not in a world'):
        share_of(5, 4, 4)


def test_single_process_is_plain_evaluate():
    graph = clustered_graph()
    ev = Evaluator(graph, 'test', ks=(5, 10))
    assert world() == (0, 1)
    assert evaluate(ev, *embeddings(graph)) == ev.evaluate(*embeddings(graph))


@pytest.mark.parametrize('world_size,batch_size', [(2, 7), (3, 16), (4, 16)])
def test_distributed_evaluation_equals_single_process(tmp_path, world_size,
                                                      batch_size):
    # (4, 16): fewer score batches than ranks, so one rank ranks nothing.
    graph = clustered_graph()
    ev = Evaluator(graph, 'test', ks=(5, 10), batch_size=batch_size)
    want = ev.evaluate(*embeddings(graph))
    spawn(_worker, (world_size, free_port(), str(tmp_path), batch_size),
          world_size)
    for rank in range(world_size):
        got = torch.load(tmp_path / f'rank{rank}.pt')
        assert got['world'] == (rank, world_size)
        assert got['metrics'] == want  # bit for bit, on every rank
