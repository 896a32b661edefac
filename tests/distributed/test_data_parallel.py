import datetime
import gc

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _util import free_port, spawn
from graphs import clustered_graph
from torch.nn.parallel import DistributedDataParallel

from pyg_recsys.data import BPRSampler
from pyg_recsys.nn import MF, LightGCN
from pyg_recsys.train import TrainConfig, Trainer
from pyg_recsys.train.trainer import _RANK_STREAM

EPOCHS, BATCH = 2, 32



def build(name):
    torch.manual_seed(0)
    if name == 'mf':
        return MF(40, 30, 8).double()
    return LightGCN(num_users=40, num_items=30, embedding_dim=8, num_layers=2)


def config(scaling, hops=None):
    return TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=0.01,
                       lambda_reg=1e-3, reg_scaling=scaling, eval_every=1,
                       patience=0, select='last', ks=(5, 10), seed=3,
                       threads=1, num_neighbors=hops)


def _worker(rank, world_size, port, out, name, scaling, hops=None):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        trainer = Trainer(build(name), clustered_graph(),
                          config(scaling, hops),
                          out_dir=f'{out}/run', progress=False)
        report = trainer.fit()
        # No DistributedDataParallel outlives the epoch that used it (its
        # reducer, holding the last reference to the process group after
        # destroy_process_group(), deadlocked gloo at exit).
        gc.collect()
        ddp = sum(isinstance(o, DistributedDataParallel)
                  for o in gc.get_objects())
        torch.save({'state': trainer.model.state_dict(), 'report': report,
                    'history': trainer.history, 'ddp': ddp},
                   f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def reference(name, scaling, world_size):
    # One process, plain Adam, each global batch the concatenation of the
    # ranks' shares drawn from their own streams.
    graph, cfg = clustered_graph(), config(scaling)
    torch.manual_seed(cfg.seed)
    model = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    local = BATCH // world_size
    samplers = [BPRSampler(graph, cfg.sampler, 1,
                           seed=cfg.seed + _RANK_STREAM * r)
                for r in range(world_size)]
    steps = -(-len(samplers[0]) // BATCH)
    adj, u = graph.norm_adj(), graph.num_users
    for _ in range(EPOCHS):
        for parts in zip(*(s.batches(local, steps * local) for s in samplers)):
            users, pos, neg = (torch.cat(t) for t in zip(*parts))
            opt.zero_grad()
            loss, _ = model.training_loss(adj, users, pos + u, neg + u,
                                          cfg.lambda_reg, scaling)
            loss.backward()
            opt.step()
    return model.state_dict()


@pytest.mark.parametrize('name,scaling,world_size,atol,hops', [
    ('mf', 'lightgcn', 2, 1e-12, None),    # float64: equal to rounding
    ('mf', 'dccf', 2, 1e-12, None),        # an L2 summed over the batch
    ('lightgcn', 'lightgcn', 2, 1e-5, None),
    ('lightgcn', 'lightgcn', 4, 1e-5, None),
    # Mini-batches on sampled subgraphs, every neighbour taken: each rank
    # propagates its own batch's subgraph, equal to the full graph's step.
    ('lightgcn', 'lightgcn', 2, 1e-5, [-1, -1]),
])
def test_data_parallel_equals_one_process_at_the_global_batch(
        tmp_path, name, scaling, world_size, atol, hops):
    spawn(_worker, (world_size, free_port(), str(tmp_path), name, scaling,
                    hops), world_size)
    want = reference(name, scaling, world_size)
    results = [torch.load(tmp_path / f'rank{r}.pt', weights_only=False)
               for r in range(world_size)]
    for got in results:
        assert got['ddp'] == 0
        for key, value in want.items():
            torch.testing.assert_close(got['state'][key], value, atol=atol,
                                       rtol=0)
        for split in ('valid', 'test'):  # identical metrics on every rank
            assert got['report'][split] == results[0]['report'][split]
    # Rank 0 alone wrote the run's files; its checkpoint loads in one
    # process and evaluates to the reported test metrics.
    loaded = Trainer.from_checkpoint(str(tmp_path / 'run' / 'checkpoint.pt'))
    assert loaded.evaluate('test') == results[0]['report']['test']
    lines = (tmp_path / 'run' / 'log.jsonl').read_text().splitlines()
    assert len(lines) == 2 * EPOCHS  # one train and one eval line an epoch


def test_batch_must_split_over_processes(tmp_path):
    spawn(_bad_batch, (free_port(), str(tmp_path)), 2)
    assert (tmp_path / 'rank0.txt').read_text().startswith(
        'Trainer: batch_size 33 does not split over 2')


def _bad_batch(rank, port, out):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        Trainer(build('mf'), clustered_graph(),
                TrainConfig(batch_size=33, threads=1), progress=False)
    except ValueError as e:
        with open(f'{out}/rank{rank}.txt', 'w') as f:
            f.write(str(e))
    finally:
        dist.destroy_process_group()


def test_cli_under_torchrun(tmp_path):
    # `torchrun -m pyg_recsys.cli train` unchanged: rank 0 reports and
    # writes; the checkpoint loads in one process.
    import subprocess
    import sys
    g = torch.Generator().manual_seed(0)
    rows = {(int(u), int(i)) for u, i in torch.randint(0, 30, (400, 2),
                                                       generator=g)}
    data = tmp_path / 'clicks.csv'
    data.write_text('user,item\n' + ''.join(f'{u},{i}\n' for u, i in rows))
    out = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node',
           '2', '--master-port', str(free_port()), '-m', 'pyg_recsys.cli',
           'train', 'mf', '--data', str(data), '--epochs', '2',
           '--batch-size', '64', '--threads', '1', '--out', str(out),
           '--no-progress']
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('mf on clicks') == 1  # rank 0 only
    import json
    loaded = Trainer.from_checkpoint(str(out / 'checkpoint.pt'))
    final = json.loads((out / 'final.json').read_text())
    assert loaded.evaluate('test') == final['test']


def _dying(rank, port, out):
    import os
    import time
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=30))
    if rank == 1:
        os._exit(3)  # dies without a word, as a killed worker would
    start = time.perf_counter()
    try:
        Trainer(build('mf'), clustered_graph(), config('lightgcn'),
                progress=False).fit()
        message = 'no error'
    except Exception as e:  # noqa: BLE001  (what the survivor sees)
        message = f'{type(e).__name__}: {e}'
    with open(f'{out}/rank0.txt', 'w') as f:
        f.write(f'{time.perf_counter() - start:.1f}\n{message}')


def test_a_dead_process_fails_the_others_not_hangs(tmp_path):
    ctx = mp.start_processes(_dying, args=(free_port(), str(tmp_path)),
                             nprocs=2, join=False, start_method='spawn')
    ctx.processes[0].join(timeout=90)  # the survivor, not the dead one
    alive = ctx.processes[0].is_alive()
    for proc in ctx.processes:
        if proc.is_alive():
            proc.kill()
    assert not alive, 'the surviving process hangs'
    assert ctx.processes[1].exitcode == 3
    seconds, message = (tmp_path / 'rank0.txt').read_text().split('\n', 1)
    assert message.startswith('RuntimeError') and float(seconds) < 45
