"""Sparse propagation, forward + backward of a 3-layer LightGCN stack on the
normalised adjacency, every path side by side in one run.

    python benchmarks/bench_propagation.py [--datasets gowalla yelp2018]
        [--dims 32 64] [--layers 3] [--repeat 5] [--rounds 3] [--threads 2]
        [--no-memory]

Paths: PyG ``LGConv`` on ``edge_index``, on a torch CSR adjacency and on a
``torch_sparse.SparseTensor`` (when installed); ``torch.sparse.mm`` with COO
and CSR; ``embedding_bag`` over the CSR rows with a symmetric backward; the
package's ``light_propagate`` on its pure-PyTorch path; its ``LightConv``
layers and its fused ``light_propagate`` on the compiled kernels, with float32
and with bfloat16 storage of the gathered rows.

Time: median of ``--repeat`` runs after a warm-up (PyG ``edge_index``: one),
taken in ``--rounds`` interleaved rounds (every path, then every path again),
so that a slow spell of this shared machine hits all paths alike; a path's time
is its median over the rounds, and the ratio of the fused compiled op to the
``embedding_bag`` path is also given per round (median and range).
Extra peak memory: each path runs once more in a child process started with
``MALLOC_MMAP_THRESHOLD_`` set, so that every large tensor is mapped on
allocation and unmapped on free; the growth of the peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs``) over that run, minus the
output and input-gradient tables it must create, is the extra memory.

The floor: one forward + backward gathers ``2 * layers * nnz`` feature rows.
The machine's gather rate is measured in the same run (``embedding_bag`` in
sum mode without weights over the same CSR pattern, the plain ATen gather),
and the floor is those bytes at that rate (for the bfloat16-storage path, the
same gather over a bfloat16 copy of the table).
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from _common import load_note, require_dataset, timeit

import pyg_recsys.typing
from pyg_recsys.data import load_dataset
from pyg_recsys.nn import LightConv
from pyg_recsys.ops import light_propagate


def rss_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def peak_growth(fn) -> float:
    """Bytes by which one call of ``fn`` raises the peak resident set."""
    fn()
    gc.collect()
    base = rss_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident set
    fn()
    return (rss_kib('VmHWM') - base) * 1024.0


def stack(conv_fn, layers):
    def run(x, adj):
        out = x
        h = x
        for _ in range(layers):
            h = conv_fn(h, adj)
            out = out + h
        return out / (layers + 1)
    return run


def build_paths(graph, d, layers, with_edge_index=True):
    """Label -> a callable that runs one forward + backward."""
    from torch_geometric.nn import LGConv
    adj = graph.norm_adj()
    n, nnz = graph.num_nodes, adj.values().numel()
    rowptr, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    # LGConv normalises its input itself: give it the raw pattern.
    raw_csr = torch.sparse_csr_tensor(rowptr, col, torch.ones(nnz), (n, n))
    coo = adj.to_sparse_coo().coalesce()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, d, generator=gen)
    g = torch.randn(n, d, generator=gen)

    def fwd_bwd(forward, compiled=False):
        def run():
            prefer = pyg_recsys.typing.PREFER_COMPILED
            saved = prefer['cpu']
            prefer['cpu'] = compiled  # for forward and backward
            try:
                x = x0.detach().requires_grad_()
                forward(x).backward(g)
            finally:
                prefer['cpu'] = saved
        return run

    def bag(h):
        return F.embedding_bag(col, h, rowptr, mode='sum',
                               per_sample_weights=val,
                               include_last_offset=True)

    class BagSym(torch.autograd.Function):
        @staticmethod
        def forward(ctx, h):
            return bag(h)

        @staticmethod
        def backward(ctx, grad):
            return bag(grad.contiguous())

    conv = LGConv()
    paths = {}
    if with_edge_index:
        paths['PyG LGConv(edge_index)'] = fwd_bwd(
            lambda x: stack(conv, layers)(x, graph.edge_index))
    paths['PyG LGConv(torch CSR)'] = fwd_bwd(
        lambda x: stack(conv, layers)(x, raw_csr))
    try:
        from torch_sparse import SparseTensor
        st = SparseTensor(rowptr=rowptr, col=col, sparse_sizes=(n, n))
        paths['PyG LGConv(SparseTensor)'] = fwd_bwd(
            lambda x: stack(conv, layers)(x, st))
    except ImportError:
        pass
    paths['torch.sparse.mm COO'] = fwd_bwd(
        lambda x: stack(lambda h, a: torch.sparse.mm(a, h), layers)(x, coo))
    paths['torch.sparse.mm CSR'] = fwd_bwd(
        lambda x: stack(lambda h, a: torch.sparse.mm(a, h), layers)(x, adj))
    paths['embedding_bag, symmetric bwd'] = fwd_bwd(
        lambda x: stack(lambda h, a: BagSym.apply(h), layers)(x, None))
    alpha = [1.0 / (layers + 1)] * (layers + 1)
    fused = lambda x: light_propagate(adj, x, layers, alpha)  # noqa: E731
    lc = LightConv(normalize=False)
    paths['pyg_recsys light_propagate, PyTorch path'] = fwd_bwd(fused)
    if pyg_recsys.typing.WITH_EXT:
        paths['pyg_recsys LightConv x3, compiled'] = fwd_bwd(
            lambda x: stack(lc, layers)(x, adj), compiled=True)
        paths['pyg_recsys light_propagate, compiled'] = fwd_bwd(
            fused, compiled=True)
        paths['pyg_recsys light_propagate, compiled, bf16 storage'] = \
            fwd_bwd(lambda x: light_propagate(adj, x, layers, alpha,
                                              storage_dtype=torch.bfloat16),
                    compiled=True)

    x0_bf16 = x0.to(torch.bfloat16)

    def gather(bf16=False):
        F.embedding_bag(col, x0_bf16 if bf16 else x0, rowptr, mode='sum',
                        include_last_offset=True)

    return paths, gather, nnz


def child_memory(args) -> None:
    graph = load_dataset(args.datasets[0], root=require_dataset(
        args.datasets[0]))
    paths, _, _ = build_paths(graph, args.dims[0], args.layers)
    print(json.dumps(peak_growth(paths[args.child_memory])))


def memory_in_child(args, name, d, label) -> float:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536',
               OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, os.path.abspath(__file__), '--datasets', name,
           '--dims', str(d), '--layers', str(args.layers), '--threads',
           str(args.threads), '--child-memory', label]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--datasets', nargs='+', default=['gowalla', 'yelp2018'])
    p.add_argument('--dims', type=int, nargs='+', default=[32, 64])
    p.add_argument('--layers', type=int, default=3)
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--rounds', type=int, default=3,
                   help='interleaved rounds over all paths')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--skip-edge-index', action='store_true',
                   help='leave out the slow PyG edge_index path')
    p.add_argument('--no-memory', action='store_true',
                   help='skip the peak-memory runs')
    p.add_argument('--child-memory', help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_memory:
        return child_memory(args)
    L = args.layers
    print(f'{args.threads} threads, {L} layers, torch {torch.__version__}, '
          f'extension {"built" if pyg_recsys.typing.WITH_EXT else "absent"}, '
          f'{load_note()}')

    for name in args.datasets:
        graph = load_dataset(name, root=require_dataset(name))
        for d in args.dims:
            paths, gather, nnz = build_paths(graph, d, L,
                                             not args.skip_edge_index)
            rounds = {label: [] for label in paths}
            rates, floors_bf16 = [], []
            for _ in range(args.rounds):
                for label, fn in paths.items():
                    if 'edge_index' in label and rounds[label]:
                        continue  # seconds a run: once is enough
                    rounds[label].append(timeit(
                        fn, 1 if 'edge_index' in label else args.repeat))
                rates.append(nnz * d * 4 / timeit(gather, args.repeat * 2))
                # bfloat16 rows: the floor of the bf16-storage path.
                floors_bf16.append(2 * L * timeit(lambda: gather(True),
                                                  args.repeat * 2))
            times = {k: statistics.median(v) for k, v in rounds.items()}
            rate = statistics.median(rates)
            floor = 2 * L * nnz * d * 4 / rate
            floor_bf16 = statistics.median(floors_bf16)
            tables = 2 * graph.num_nodes * d * 4  # output and input gradient
            extra = {label: (float('nan') if args.no_memory else
                             (memory_in_child(args, name, d, label) - tables)
                             / 2**20) for label in paths}
            pyg_t = times.get('PyG LGConv(edge_index)')
            best_label, best_t = min(
                ((k, v) for k, v in times.items()
                 if 'compiled' not in k and 'edge_index' not in k),
                key=lambda kv: kv[1])
            print(f'\n{name}: {graph.num_nodes:,} nodes, {nnz:,} nonzeros, '
                  f'd={d}; gather rate {rate / 1e9:.1f} GB/s, gather floor '
                  f'{floor * 1e3:.1f} ms (bf16 rows: {floor_bf16 * 1e3:.1f} '
                  f'ms); best pure-PyTorch path: '
                  f'{best_label}; {load_note()}')
            print(f"{'path':<52}{'fwd+bwd ms':>11}{'extra MB':>10}"
                  f"{'vs PyG ei':>10}{'vs best pure':>13}{'/ floor':>9}")
            for label, t in times.items():
                vs_pyg = f'{pyg_t / t:.1f}x' if pyg_t else '-'
                own_floor = floor_bf16 if 'bf16' in label else floor
                print(f'{label:<52}{t * 1e3:>11.1f}{extra[label]:>10.0f}'
                      f'{vs_pyg:>10}{best_t / t:>12.2f}x'
                      f'{t / own_floor:>9.2f}')
            bag = rounds['embedding_bag, symmetric bwd']
            for label in ('pyg_recsys light_propagate, compiled',
                          'pyg_recsys light_propagate, compiled, bf16 storage'):
                if label in rounds:
                    ratios = sorted(b / t for b, t in zip(bag, rounds[label]))
                    print(f'{label} vs embedding_bag, per round: median '
                          f'{statistics.median(ratios):.2f}x, range '
                          f'{ratios[0]:.2f}-{ratios[-1]:.2f}x '
                          f'({len(ratios)} rounds)')


if __name__ == '__main__':
    main()
