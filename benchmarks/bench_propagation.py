"""Sparse propagation, forward + backward of a 3-layer LightGCN stack on the
normalised adjacency, every path side by side in one run.

    python benchmarks/bench_propagation.py [--datasets gowalla yelp2018]
        [--dims 32 64] [--layers 3] [--repeat 5] [--threads 2]

Paths: PyG ``LGConv`` on ``edge_index``, on a torch CSR adjacency and on a
``torch_sparse.SparseTensor`` (when installed); ``torch.sparse.mm`` with COO
and CSR; ``embedding_bag`` over the CSR rows with a symmetric backward (the
package's pure-PyTorch fallback); the package's ``LightConv`` layers and its
fused ``light_propagate`` on the compiled kernels. Each is timed as the
median of ``--repeat`` runs after a warm-up; extra peak memory is the growth
of the process's peak resident set during one run (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs``) minus the output and gradient tables.
This is approximate: memory the allocator kept from the warm-up run is
reused without growing the resident set, so small or negative values mean
"no more than the warm-up already held" (setting ``MALLOC_MMAP_THRESHOLD_``
makes it exact but doubles every time through page faults).

The floor: one forward + backward gathers ``2 * layers * nnz`` feature rows.
The machine's gather rate is measured in the same run (``embedding_bag`` in
sum mode without weights over the same CSR pattern, the plain ATen gather),
and the floor is those bytes at that rate.
"""
import argparse
import gc
import statistics
import time

import torch
import torch.nn.functional as F
from _common import load_note, require_dataset

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


def reset_peak() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def measure(fn, repeat):
    fn()  # warm-up
    gc.collect()
    base = rss_kib('VmRSS')
    ok = reset_peak()
    fn()
    peak = rss_kib('VmHWM') - base if ok else float('nan')
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), peak * 1024


def stack(conv_fn, layers):
    def run(x, adj):
        out = x
        h = x
        for _ in range(layers):
            h = conv_fn(h, adj)
            out = out + h
        return out / (layers + 1)
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--datasets', nargs='+', default=['gowalla', 'yelp2018'])
    p.add_argument('--dims', type=int, nargs='+', default=[32, 64])
    p.add_argument('--layers', type=int, default=3)
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--skip-edge-index', action='store_true',
                   help='leave out the slow PyG edge_index path')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from torch_geometric.nn import LGConv
    try:
        from torch_sparse import SparseTensor
    except ImportError:
        SparseTensor = None
    L = args.layers
    print(f'{args.threads} threads, {L} layers, torch {torch.__version__}, '
          f'extension {"built" if pyg_recsys.typing.WITH_EXT else "absent"}, '
          f'{load_note()}')

    for name in args.datasets:
        graph = load_dataset(name, root=require_dataset(name))
        adj = graph.norm_adj()
        n, nnz = graph.num_nodes, adj.values().numel()
        edge_index = graph.edge_index
        # LGConv normalises its input itself: give it the raw pattern.
        raw_csr = torch.sparse_csr_tensor(adj.crow_indices(),
                                          adj.col_indices(),
                                          torch.ones(nnz), (n, n))
        coo = adj.to_sparse_coo().coalesce()
        rowptr, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
        for d in args.dims:
            x0 = torch.randn(n, d)
            g = torch.randn(n, d)
            table_bytes = 2 * n * d * 4  # output and input gradient

            def fwd_bwd(forward, compiled=False):
                # The compiled kernels are switched on for forward and backward.
                def run():
                    prefer = pyg_recsys.typing.PREFER_COMPILED
                    saved = prefer['cpu']
                    prefer['cpu'] = compiled
                    try:
                        x = x0.detach().requires_grad_()
                        out = forward(x)
                        out.backward(g)
                    finally:
                        prefer['cpu'] = saved
                return run

            def bag(h, _a):
                return F.embedding_bag(col, h, rowptr, mode='sum',
                                       per_sample_weights=val,
                                       include_last_offset=True)

            class BagSym(torch.autograd.Function):
                @staticmethod
                def forward(ctx, h):
                    return bag(h, None)

                @staticmethod
                def backward(ctx, grad):
                    return bag(grad.contiguous(), None)

            paths = {}
            if not args.skip_edge_index:
                conv = LGConv()
                paths['PyG LGConv(edge_index)'] = stack(
                    lambda h, a: conv(h, a), L), edge_index
            conv = LGConv()
            paths['PyG LGConv(torch CSR)'] = stack(
                lambda h, a: conv(h, a), L), raw_csr
            if SparseTensor is not None:
                st = SparseTensor(rowptr=rowptr, col=col, sparse_sizes=(n, n))
                paths['PyG LGConv(SparseTensor)'] = stack(
                    lambda h, a: conv(h, a), L), st
            paths['torch.sparse.mm COO'] = stack(
                lambda h, a: torch.sparse.mm(a, h), L), coo
            paths['torch.sparse.mm CSR'] = stack(
                lambda h, a: torch.sparse.mm(a, h), L), adj
            paths['embedding_bag, symmetric bwd'] = stack(
                lambda h, a: BagSym.apply(h), L), None
            alpha = [1.0 / (L + 1)] * (L + 1)

            def pkg(use_ext, fused):
                def forward(x):
                    if fused:
                        return light_propagate(adj, x, L, alpha)
                    lc = LightConv(normalize=False)
                    return stack(lambda h, a: lc(h, a), L)(x, adj)
                return fwd_bwd(forward, compiled=use_ext)

            results = []
            for label, (fn, a) in paths.items():
                t, mem = measure(fwd_bwd(lambda x, fn=fn, a=a: fn(x, a)),
                                 1 if 'edge_index' in label else args.repeat)
                results.append((label, t, mem))
            results.append(('pyg_recsys light_propagate, PyTorch path',
                            *measure(pkg(False, True), args.repeat)))
            if pyg_recsys.typing.WITH_EXT:
                results.append(('pyg_recsys LightConv x3, compiled',
                                *measure(pkg(True, False), args.repeat)))
                results.append(('pyg_recsys light_propagate, compiled',
                                *measure(pkg(True, True), args.repeat)))

            # Gather rate of the plain ATen gather-sum on the same pattern.
            def gather():
                F.embedding_bag(col, x0, rowptr, mode='sum',
                                include_last_offset=True)
            tg, _ = measure(gather, args.repeat * 2)
            rate = nnz * d * 4 / tg
            floor = 2 * L * nnz * d * 4 / rate
            big = torch.randn(64 * 1024 * 1024 // 4 * 4)
            ts, _ = measure(lambda: big.sum(), args.repeat)
            seq = big.numel() * 4 / ts

            ref = dict((r[0], r[1]) for r in results)
            pyg_t = ref.get('PyG LGConv(edge_index)')
            pure = [r for r in results if 'compiled' not in r[0]
                    and 'edge_index' not in r[0]]
            best_pure = min(pure, key=lambda r: r[1])
            print(f'\n{name}: {n:,} nodes, {nnz:,} nonzeros, d={d}; gather '
                  f'rate {rate / 1e9:.1f} GB/s, sequential read '
                  f'{seq / 1e9:.1f} GB/s, gather floor {floor * 1e3:.1f} ms; '
                  f'best pure-PyTorch path: {best_pure[0]}; '
                  f'{load_note()}')
            print(f"{'path':<44}{'fwd+bwd ms':>11}{'extra MB':>10}"
                  f"{'vs PyG ei':>10}{'vs best pure':>13}{'/ floor':>9}")
            for label, t, mem in results:
                extra = (mem - table_bytes) / 2**20
                vs_pyg = f'{pyg_t / t:.1f}x' if pyg_t else '-'
                print(f'{label:<44}{t * 1e3:>11.1f}{extra:>10.0f}'
                      f'{vs_pyg:>10}{best_pure[1] / t:>12.2f}x'
                      f'{t / floor:>9.2f}')


if __name__ == '__main__':
    main()
