r"""Full-ranking evaluation on Gowalla: plain baseline vs. the package.

The baseline is what an evaluation loop usually does: user batches of
:obj:`torch.mm` into a preallocated buffer, training items written to
:obj:`-inf` at flat indices, and :func:`torch.topk`. The package path is
:meth:`pyg_recsys.metrics.Evaluator.evaluate` (which also computes all
metrics and breaks ties by item id exactly). Both rank every one of the
40,981 items for each of the 29,858 test users with random 64-dimensional
embeddings (fixed seed), on 2 threads; times are medians of 3 runs after a
warm-up, interleaved so that both see the same machine load.

Usage::

    python benchmarks/bench_eval.py [--repeat 3] [--threads 2]

The data folder is :obj:`$PYG_RECSYS_DATA`, else :obj:`../shared/data`
beside the repository; the script prints a message and exits if Gowalla is
missing there.
"""
import argparse
import os
import statistics
import time

import torch
from _common import require_dataset

from pyg_recsys.data import InteractionGraph, load_dataset
from pyg_recsys.metrics import Evaluator

TARGET_S = 3.0


def make_baseline(graph: InteractionGraph, k: int, batch_size: int = 512):
    r"""Plain batched matmul + mask + :func:`torch.topk`; the mask indices
    are prepared once, like the evaluator does at construction."""
    rowptr, _ = graph.csr('test')
    users = (rowptr.diff() > 0).nonzero().view(-1)
    tr_rowptr, tr_col = graph.csr('train')
    num_items = graph.num_items
    batches = []
    for start in range(0, users.numel(), batch_size):
        u = users[start:start + batch_size]
        lo, hi = tr_rowptr[u], tr_rowptr[u + 1]
        row = torch.repeat_interleave(torch.arange(u.numel()), hi - lo)
        col = torch.cat([tr_col[a:b] for a, b in zip(lo.tolist(),
                                                     hi.tolist())])
        batches.append((u, row * num_items + col))

    def run(user_emb, item_emb):
        item_t = item_emb.t().contiguous()
        buf = torch.empty(batch_size, num_items)
        out = []
        for u, flat in batches:
            scores = buf[:u.numel()]
            torch.mm(user_emb[u], item_t, out=scores)
            scores.view(-1).index_fill_(0, flat, float('-inf'))
            out.append(scores.topk(k, dim=1).indices)
        return torch.cat(out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--dim', type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    root = require_dataset('gowalla')
    start = time.perf_counter()
    graph = load_dataset('gowalla', root=root)
    print(f'{graph!r} loaded from {root} in '
          f'{time.perf_counter() - start:.1f} s')
    gen = torch.Generator().manual_seed(0)
    user_emb = torch.randn(graph.num_users, args.dim, generator=gen)
    item_emb = torch.randn(graph.num_items, args.dim, generator=gen)

    ks = (10, 20)
    evaluator = Evaluator(graph, split='test', ks=ks)
    baseline = make_baseline(graph, max(ks))
    print(f'{evaluator.num_eval_users} test users x {graph.num_items} items, '
          f'd={args.dim}, {graph.train.size(1)} masked train pairs, '
          f'K={ks}, {torch.get_num_threads()} threads, evaluator '
          f'batch_size={evaluator.batch_size}')

    # Warm-up, and agreement of the top-20 lists: random float scores have
    # no exact ties, so the lists agree up to float32 rounding.
    base_index = baseline(user_emb, item_emb)
    pkg_index = evaluator.rank(user_emb, item_emb)
    differ = (base_index != pkg_index).any(dim=1).nonzero().view(-1)
    print(f'identical top-{max(ks)} lists: '
          f'{pkg_index.size(0) - differ.numel()} / {pkg_index.size(0)}')
    if differ.numel():
        # Near-equal scores that the two GEMM layouts round differently.
        a, b = base_index[differ], pkg_index[differ]
        same_set = bool((a.sort(1).values == b.sort(1).values).all())
        users = evaluator.users[differ]
        exact = (user_emb[users].double() @ item_emb.double().t())
        pos = a != b
        gap = (exact.gather(1, a)[pos] - exact.gather(1, b)[pos]).abs().max()
        print(f'  {differ.numel()} lists differ: same items: {same_set}, '
              f'swapped items whose float64 scores differ by at most '
              f'{float(gap):.1e} (float32 rounding of the padded vs. '
              f'unpadded GEMM)')
    result = evaluator.evaluate(user_emb, item_emb)

    load_before = os.getloadavg()
    times = {'baseline': [], 'evaluator': []}
    for _ in range(args.repeat):
        t = time.perf_counter()
        baseline(user_emb, item_emb)
        times['baseline'].append(time.perf_counter() - t)
        t = time.perf_counter()
        result = evaluator.evaluate(user_emb, item_emb)
        times['evaluator'].append(time.perf_counter() - t)
    load_after = os.getloadavg()

    base = statistics.median(times['baseline'])
    pkg = statistics.median(times['evaluator'])
    fmt = ', '.join(f'{t:.2f}' for t in times['baseline'])
    print(f'baseline  (mm + mask + torch.topk):        {base:.3f} s '
          f'(runs: {fmt})')
    fmt = ', '.join(f'{t:.2f}' for t in times['evaluator'])
    print(f'evaluator (Evaluator.evaluate, all metrics): {pkg:.3f} s '
          f'(runs: {fmt})')
    print(f'ratio baseline / evaluator: {base / pkg:.2f}x')
    print(f'evaluator < {TARGET_S:.0f} s: {"yes" if pkg < TARGET_S else "NO"}')
    print(f'load average (1, 5, 15 min) before: '
          f'{", ".join(f"{x:.2f}" for x in load_before)}; after: '
          f'{", ".join(f"{x:.2f}" for x in load_after)}')
    print('metrics (random embeddings): ' +
          ', '.join(f'{k}={v:.5f}' for k, v in result.items()))


if __name__ == '__main__':
    main()
