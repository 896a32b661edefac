"""Per-process memory of a row-sharded embedding table and its Adam state,
at world sizes 1, 2 and 4, printed side by side in one run, with the step
time and the share of it spent in the collectives.

    python benchmarks/bench_sharded_memory.py            # 5 M nodes, d 64

Synthetic BPR-MF: 3 M users + 2 M items (5 M rows), d 64, float32, batch
8,192 uniform triples a step (each process draws its share), Adam. World
size 1 is the plain single-process model (``MF``, a dense
``torch.nn.Embedding`` and dense Adam); the others are ``ShardedMF`` on
gloo processes with 1 thread each. Every world size runs in fresh processes.
Memory is counted two ways on every rank: exactly, as the bytes of the
tensors of the table, its gradient and Adam's two moments after the steps
(beside the formula 16 N d / w bytes); and as the process's peak resident
set (``VmHWM``) above its resident set just before the model was built,
which also counts transients (the lookups, Adam's temporaries, the
allocator).
The collectives' share is the wall time inside ``all_to_all_single``
(monkeypatched with a timer and a byte counter in this script only) over
the step time; the bytes each process sends a step are printed beside
their bound, 3 B / w distinct ids of 8 B out plus as many rows and
gradients of d floats.
"""
import argparse
import datetime
import os
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pyg_recsys.distributed import ShardedMF
from pyg_recsys.nn import MF

MiB = 2 ** 20


def status(key: str) -> int:
    # VmRSS: resident now; VmHWM: the peak of this process's own address
    # space (ru_maxrss would carry the parent's peak over fork and exec).
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    return 0


def table_bytes(model, opt) -> int:
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        if p.grad is not None:
            total += p.grad.numel() * p.grad.element_size()
        for v in opt.state.get(p, {}).values():
            if torch.is_tensor(v) and v.dim() > 0:
                total += v.numel() * v.element_size()
    return total


def run(rank, world_size, args, out):
    torch.set_num_threads(1)
    spent, sent = [0.0], [0]
    if world_size > 1:
        raw = dist.all_to_all_single

        def timed(output, input, *a, **k):
            t = time.perf_counter()
            sent[0] += input.numel() * input.element_size()
            try:
                return raw(output, input, *a, **k)
            finally:
                spent[0] += time.perf_counter() - t
        dist.all_to_all_single = timed
    before = status('VmRSS')
    U, M = args.users, args.items
    model = (ShardedMF(U, M, args.dim) if world_size > 1
             else MF(U, M, args.dim))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(rank)
    local = args.batch // world_size
    times = []
    for step in range(args.steps):
        users = torch.randint(0, U, (local, ), generator=g)
        pos = torch.randint(0, M, (local, ), generator=g) + U
        neg = torch.randint(0, M, (local, ), generator=g) + U
        if world_size > 1:
            dist.barrier()
        spent_before, sent_before = spent[0], sent[0]
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = model.training_loss(None, users, pos, neg, 1e-4)
        (loss / world_size).backward()
        opt.step()
        if step > 0:  # the first step allocates Adam's state
            times.append((time.perf_counter() - start,
                          spent[0] - spent_before, sent[0] - sent_before))
    step, comm, moved = (sum(t[i] for t in times) / len(times)
                         for i in range(3))
    torch.save({'tables': table_bytes(model, opt),
                'peak': status('VmHWM') - before, 'step': step,
                'comm': comm, 'sent': moved}, f'{out}/rank{rank}.pt')


def _worker(rank, world_size, port, args, out):
    if world_size == 1:  # the plain model, in a fresh process too
        return run(rank, 1, args, out)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=600))
    try:
        run(rank, world_size, args, out)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--users', type=int, default=3_000_000)
    p.add_argument('--items', type=int, default=2_000_000)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--batch', type=int, default=8192)
    p.add_argument('--steps', type=int, default=6)
    p.add_argument('--world-sizes', type=int, nargs='+', default=[1, 2, 4])
    args = p.parse_args()
    rows = []
    for w in args.world_sizes:
        with tempfile.TemporaryDirectory() as out:
            ctx = mp.start_processes(_worker, args=(w, free_port(), args,
                                                    out),
                                     nprocs=w, join=False,
                                     start_method='spawn')
            while not ctx.join(timeout=1200):
                pass
            got = [torch.load(f'{out}/rank{r}.pt') for r in range(w)]
        rows.append((w, got))
        print(f'world size {w} done', file=sys.stderr, flush=True)
    base_t = rows[0][1][0]['tables'] if rows[0][0] == 1 else None
    base_p = rows[0][1][0]['peak'] if rows[0][0] == 1 else None
    n = args.users + args.items
    print(f'BPR-MF, {n:,} rows x d {args.dim} float32, batch {args.batch}, '
          f'Adam; per process (largest rank), {args.steps - 1} timed steps')
    print('| world | model | table+grad+Adam MiB (16 N d / w) | ratio to '
          'w=1 | peak RSS increase MiB | ratio | step s | collectives | sent '
          'MiB a step, mean (3 B / w bound) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for w, got in rows:
        t = max(r['tables'] for r in got)
        pk = max(r['peak'] for r in got)
        step = max(r['step'] for r in got)
        comm = max(r['comm'] for r in got)
        sent = sum(r['sent'] for r in got) / w  # mean over processes
        rt = f'{t / base_t:.3f}' if base_t else '-'
        rp = f'{pk / base_p:.3f}' if base_p else '-'
        name = 'MF' if w == 1 else 'ShardedMF'
        formula = 16 * n * args.dim / w
        # Per process and step, on average: its distinct ids (at most
        # 3 B / w) out, and as many rows of d floats back and gradients out.
        bound = 3 * args.batch / w * (8 + 8 * args.dim) if w > 1 else 0
        print(f'| {w} | {name} | {t / MiB:,.1f} ({formula / MiB:,.1f}) | '
              f'{rt} | {pk / MiB:,.1f} | {rp} | {step:.3f} | '
              f'{comm / step:.1%} | {sent / MiB:.2f} ({bound / MiB:.2f}) |')
    return 0


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    sys.exit(main())
