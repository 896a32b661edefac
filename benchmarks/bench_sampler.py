"""BPR sampling of one Gowalla epoch (810,128 triples): the package's
vectorised samplers against a per-triple Python loop in the style of the
LightGCN reference code, side by side.

    python benchmarks/bench_sampler.py [--reference-triples N]

Target (issue 2): one epoch in under 0.5 s on this 2-core machine.
"""
import argparse
import random
import time

import torch
from _common import load_note, require_dataset, timeit

from pyg_recsys.data import BPRSampler, load_dataset


def reference_epoch(graph, n):
    """Per triple: a random user with items, a random positive, negatives
    redrawn until not a positive (the LightGCN code's scheme)."""
    rowptr, col = graph.csr('train')
    items = [set(col[rowptr[u]:rowptr[u + 1]].tolist())
             for u in range(graph.num_users)]
    lists = [sorted(s) for s in items]
    users = [u for u in range(graph.num_users) if items[u]]
    rng = random.Random(0)
    out = []
    for _ in range(n):
        u = users[rng.randrange(len(users))]
        i = lists[u][rng.randrange(len(lists[u]))]
        while True:
            j = rng.randrange(graph.num_items)
            if j not in items[u]:
                break
        out.append((u, i, j))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--reference-triples', type=int, default=810128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_dataset('gowalla', root=require_dataset('gowalla'))
    n = graph.train.size(1)
    print(f'Gowalla: {graph}; one epoch = {n:,} triples; '
          f'{args.threads} threads; {load_note()}')
    results = {}
    for scheme in ('per_user', 'per_interaction'):
        sampler = BPRSampler(graph, scheme, seed=0)
        results[scheme] = timeit(sampler.sample, repeat=5)
    start = time.perf_counter()
    reference_epoch(graph, args.reference_triples)
    ref = (time.perf_counter() - start) * n / args.reference_triples
    print(f"{'path':<36} {'s / epoch':>10} {'vs reference':>13}")
    print(f"{'python loop (LightGCN-style)':<36} {ref:>10.3f} {1.0:>12.1f}x")
    for scheme, t in results.items():
        print(f"{'BPRSampler ' + scheme:<36} {t:>10.3f} {ref / t:>12.1f}x")
    ok = all(t < 0.5 for t in results.values())
    print(f"target < 0.5 s per epoch: {'met' if ok else 'NOT met'}")


if __name__ == '__main__':
    main()
