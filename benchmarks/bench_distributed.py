"""Distributed exact evaluation on a real data set: the full-ranking
metrics of one set of embeddings computed by one process and by N gloo
processes (users split over the ranks), printed side by side with their
wall times; the run fails unless every rank's numbers equal the
single-process ones exactly.

    python benchmarks/bench_distributed.py --dataset gowalla --world-sizes 2

The embeddings are LightGCN's propagation of a seeded random table (d 64,
3 layers), so that the ranking is not trivial; no training is involved.
"""
import argparse
import datetime
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _common import data_root, load_note, require_dataset

from pyg_recsys.data import load_dataset
from pyg_recsys.distributed import evaluate
from pyg_recsys.metrics import Evaluator
from pyg_recsys.ops import light_propagate


def embeddings(graph):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(graph.num_users + graph.num_items, 64, generator=g)
    out = light_propagate(graph.norm_adj(), x, 3)
    return out[:graph.num_users], out[graph.num_users:]


def _worker(rank, world_size, port, dataset, root, out):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=300))
    try:
        torch.set_num_threads(1)
        graph = load_dataset(dataset, root=root)
        ev = Evaluator(graph, 'test', ks=(20, ))
        users, items = embeddings(graph)
        dist.barrier()
        start = time.perf_counter()
        metrics = evaluate(ev, users, items)
        seconds = time.perf_counter() - start
        torch.save({'metrics': metrics, 'seconds': seconds},
                   f'{out}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='gowalla')
    p.add_argument('--world-sizes', type=int, nargs='+', default=[2])
    args = p.parse_args()
    root = require_dataset(args.dataset)
    torch.set_num_threads(1)
    graph = load_dataset(args.dataset, root=root)
    print(f'{graph}; 1 thread per process; {load_note()}', flush=True)
    ev = Evaluator(graph, 'test', ks=(20, ))
    users, items = embeddings(graph)
    start = time.perf_counter()
    want = ev.evaluate(users, items)
    single = time.perf_counter() - start
    print(f'1 process: {single:.2f} s, recall@20 {want["recall@20"]!r}, '
          f'ndcg@20 {want["ndcg@20"]!r}')
    ok = True
    for world_size in args.world_sizes:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as out:
            mp.start_processes(_worker, args=(world_size, port, args.dataset,
                                              data_root(), out),
                               nprocs=world_size, join=True,
                               start_method='spawn')
            got = [torch.load(f'{out}/rank{r}.pt') for r in range(world_size)]
        same = all(g['metrics'] == want for g in got)
        ok &= same
        slowest = max(g['seconds'] for g in got)
        print(f'{world_size} processes: {slowest:.2f} s ({single / slowest:.2f}x'
              f'), every rank equal to 1 process: {same}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
