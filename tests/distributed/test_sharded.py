import datetime

import pytest
import torch
import torch.distributed as dist
from _util import free_port, spawn
from graphs import clustered_graph
from test_data_parallel import EPOCHS, build, config, reference

from pyg_recsys.distributed import ShardedEmbedding, ShardedLightGCN, ShardedMF
from pyg_recsys.train import Trainer


def _init(rank, world_size, port):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    torch.set_num_threads(1)


def _lookup_worker(rank, world_size, port, out, num_rows):
    _init(rank, world_size, port)
    try:
        table = ShardedEmbedding(num_rows, 4, seed=5).double()
        full = torch.randn(num_rows, 4, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(1))
        initial = table.full()
        table.load_full_(full)
        g = torch.Generator().manual_seed(10 + rank)
        # Duplicates, ids of every share, and rank 1 asks for nothing.
        index = (torch.randint(0, num_rows, (3, 5), generator=g)
                 if rank != 1 else torch.empty(0, 5, dtype=torch.long))
        rows = table(index)
        weights = torch.randn(rows.shape, dtype=torch.float64, generator=g)
        (rows * weights).sum().backward()
        torch.save({'index': index, 'rows': rows.detach(),
                    'weights': weights, 'grad': table.weight.grad,
                    'start': table.start, 'end': table.end,
                    'initial': initial}, f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('world_size,num_rows', [(2, 11), (3, 2)])
def test_sharded_lookup_equals_one_table(tmp_path, world_size, num_rows):
    # (3, 2): two rows over three ranks, so rank 2 holds none.
    spawn(_lookup_worker, (world_size, free_port(), str(tmp_path), num_rows),
          world_size)
    full = torch.randn(num_rows, 4, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(1))
    got = [torch.load(tmp_path / f'rank{r}.pt') for r in range(world_size)]
    grad = torch.zeros_like(full)
    for r in got:
        assert torch.equal(r['rows'], full[r['index']])  # a gather, exact
        # The naive reference: every occurrence adds its weight to its row.
        for i, w in zip(r['index'].reshape(-1),
                        r['weights'].reshape(-1, 4)):
            grad[i] += w
    assert got[0]['start'] == 0 and got[-1]['end'] == num_rows
    if world_size == 3:
        assert got[2]['start'] == got[2]['end']  # the empty share
    for r in got:
        torch.testing.assert_close(r['grad'], grad[r['start']:r['end']],
                                   atol=1e-12, rtol=0)
        # The initial table does not depend on the world size.
        one = ShardedEmbedding(num_rows, 4, seed=5).double()
        assert torch.equal(r['initial'], one.weight.detach())


def test_single_process_table_and_bad_ids():
    table = ShardedEmbedding(7, 3)
    assert (table.start, table.end, table.weight.shape) == (0, 7, (7, 3))
    index = torch.tensor([[6, 0], [6, 2]])
    assert torch.equal(table(index), table.weight[index])
    with pytest.raises(ValueError, match=r'ids must lie in \[0, 7\)'):
        table(torch.tensor([7]))
    with pytest.raises(ValueError, match='rows and columns'):
        ShardedEmbedding(0, 3)
    with pytest.raises(ValueError, match=r'expected a \[7, 3\] table'):
        table.load_full_(torch.zeros(6, 3))


def _train_worker(rank, world_size, port, out):
    _init(rank, world_size, port)
    try:
        graph = clustered_graph()
        model = ShardedMF(graph.num_users, graph.num_items, 8).double()
        model.load_state_dict(build('mf').state_dict())  # the reference's
        trainer = Trainer(model, graph, config('lightgcn'),
                          out_dir=f'{out}/run', progress=False)
        report = trainer.fit()
        torch.save({'state': model.state_dict(), 'report': report,
                    'rows': model.embedding.weight.shape[0]},
                   f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('world_size', [2, 4])
def test_sharded_mf_equals_one_process_at_the_global_batch(tmp_path,
                                                           world_size):
    spawn(_train_worker, (world_size, free_port(), str(tmp_path)), world_size)
    want = reference('mf', 'lightgcn', world_size)  # float64 MF, plain Adam
    got = [torch.load(tmp_path / f'rank{r}.pt', weights_only=False)
           for r in range(world_size)]
    graph = clustered_graph()
    assert sum(r['rows'] for r in got) == graph.num_users + graph.num_items
    for r in got:
        torch.testing.assert_close(r['state']['embedding.weight'],
                                   want['embedding.weight'], atol=1e-12,
                                   rtol=0)
        assert r['report']['test'] == got[0]['report']['test']
    # The checkpoint is a plain MF's: it loads in one process, evaluates to
    # the reported metrics, and refuses to resume (no optimizer shards).
    loaded = Trainer.from_checkpoint(str(tmp_path / 'run' / 'checkpoint.pt'))
    assert type(loaded.model).__name__ == 'MF'
    assert loaded.evaluate('test') == got[0]['report']['test']
    lines = (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()
    assert len(lines) == 2 * EPOCHS
    fresh = Trainer(ShardedMF(graph.num_users, graph.num_items, 8), graph,
                    config('lightgcn'), out_dir=str(tmp_path / 'run'),
                    progress=False)
    with pytest.raises(ValueError, match='row-sharded'):
        fresh.resume()


def _lightgcn_worker(rank, world_size, port, out, exchange):
    _init(rank, world_size, port)
    try:
        graph = clustered_graph()
        model = ShardedLightGCN(graph.num_users, graph.num_items, 8,
                                num_layers=2, exchange=exchange)
        model.load_state_dict(build('lightgcn').state_dict())
        trainer = Trainer(model, graph, config('lightgcn'),
                          out_dir=f'{out}/run', progress=False)
        report = trainer.fit()
        torch.save({'state': model.state_dict(), 'report': report},
                   f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('world_size,exchange', [(2, 'halo'),
                                                 (4, 'all_gather')])
def test_sharded_lightgcn_equals_one_process_at_the_global_batch(
        tmp_path, world_size, exchange):
    spawn(_lightgcn_worker, (world_size, free_port(), str(tmp_path),
                             exchange), world_size)
    want = reference('lightgcn', 'lightgcn', world_size)
    got = [torch.load(tmp_path / f'rank{r}.pt', weights_only=False)
           for r in range(world_size)]
    for r in got:
        torch.testing.assert_close(r['state']['embedding.weight'],
                                   want['embedding.weight'], atol=1e-5,
                                   rtol=0)
        assert r['report']['test'] == got[0]['report']['test']
    loaded = Trainer.from_checkpoint(str(tmp_path / 'run' / 'checkpoint.pt'))
    assert type(loaded.model).__name__ == 'LightGCN'
    for key, value in loaded.evaluate('test').items():  # float32 sums
        assert abs(value - got[0]['report']['test'][key]) < 1e-6


def test_sharded_lightgcn_in_one_process_is_lightgcn():
    from pyg_recsys.nn import LightGCN
    graph = clustered_graph()
    plain = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                     embedding_dim=8, num_layers=2)
    model = ShardedLightGCN(graph.num_users, graph.num_items, 8,
                            num_layers=2)
    model.load_state_dict(plain.state_dict())
    adj = graph.norm_adj()
    torch.testing.assert_close(model.get_embedding(adj),
                               plain.get_embedding(adj))
    users, pos, neg = torch.tensor([0, 1, 1]), torch.tensor([40, 41, 45]), \
        torch.tensor([50, 60, 41])
    a, _ = model.training_loss(adj, users, pos, neg, 1e-3)
    b, _ = plain.training_loss(adj, users, pos, neg, 1e-3)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="unknown exchange 'ring'"):
        ShardedLightGCN(4, 3, 2, exchange='ring')
