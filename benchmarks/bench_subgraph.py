"""Mini-batch training on sampled subgraphs against full-graph propagation:
per LightGCN training step (BPR batch of B triples, 3 layers, d 64), the share
of the graph a batch's sampled subgraph covers, the rows the propagation
holds, and the step's time split into sampling and forward + backward, side
by side with the full-graph step on the same batches, in one run.

    python benchmarks/bench_subgraph.py --dataset gowalla --threads 2

The subgraph step propagates n rows instead of N: its activation memory per
layer is n * d floats. Where a batch's neighbourhood covers most of the
graph (small graphs, large batches, large fan-outs) the sampling is pure
overhead; the mode is for graphs whose full propagation does not fit.
"""
import argparse
import sys
import time

import torch
from _common import load_note, require_dataset

from pyg_recsys.data import BPRSampler, SubgraphSampler, load_dataset
from pyg_recsys.nn import LightGCN


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='gowalla')
    p.add_argument('--batch-sizes', type=int, nargs='+',
                   default=[256, 2048])
    p.add_argument('--fanouts', nargs='+', default=['5,5,5', '10,10,10'])
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = require_dataset(args.dataset)
    graph = load_dataset(args.dataset, root=root)
    adj = graph.norm_adj()
    off, n_all = graph.num_users, graph.num_nodes
    torch.manual_seed(0)
    model = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                     embedding_dim=64, num_layers=3)
    print(f'{args.dataset}: N = {n_all}, nnz = {adj.values().numel()}; '
          f'{args.threads} threads; {load_note()}')
    print('| B | fan-out | nodes n / N | edges / nnz | sample ms | '
          'fwd+bwd ms | step ms | full-graph step ms | ratio |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for batch_size in args.batch_sizes:
        for fanout in args.fanouts:
            hops = [int(k) for k in fanout.split(',')]
            bpr = BPRSampler(graph, seed=0)
            sub = SubgraphSampler(adj, hops, bpr.generator)
            clock = time.perf_counter
            t = {'sample': 0.0, 'sub': 0.0, 'full': 0.0}
            nodes = edges = 0
            batches = list(bpr.batches(batch_size,
                                       batch_size * (args.steps + 1)))
            for step, (u, i, j) in enumerate(batches):
                t0 = clock()
                a, n_id, lu, li, lj = sub(u, i + off, j + off)
                t1 = clock()
                loss, _ = model.training_loss(a, lu, li, lj, n_id=n_id)
                loss.backward()
                t2 = clock()
                loss, _ = model.training_loss(adj, u, i + off, j + off)
                loss.backward()
                t3 = clock()
                if step == 0:  # warm-up
                    continue
                t['sample'] += t1 - t0
                t['sub'] += t2 - t1
                t['full'] += t3 - t2
                nodes += n_id.numel()
                edges += a.values().numel()
            s = args.steps
            step_ms = 1e3 * (t['sample'] + t['sub']) / s
            full_ms = 1e3 * t['full'] / s
            print(f'| {batch_size} | {fanout} | {nodes / s / n_all:.3f} | '
                  f'{edges / s / adj.values().numel():.3f} | '
                  f'{1e3 * t["sample"] / s:.1f} | {1e3 * t["sub"] / s:.1f} | '
                  f'{step_ms:.1f} | {full_ms:.1f} | '
                  f'{step_ms / full_ms:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
