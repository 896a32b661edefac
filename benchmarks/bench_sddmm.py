r"""SDDMM (one dot product per stored entry) on real adjacencies: the
compiled :obj:`pyg_recsys::sddmm_csr` kernel against the pure-PyTorch path
of :func:`pyg_recsys.ops.sddmm` (two row gathers, a product and a sum).

SDDMM is the edge-value gradient of a sparse product: Sheaf4Rec's restriction
maps and DCCF's adaptive masks call it once per layer and step. The
adjacency is the normalised training graph (users and items, both
directions); :obj:`a` and :obj:`b` are random :obj:`[N, d]` tables. Times
are medians of 5 calls after a warm-up, the two paths timed one after the
other on the same tables; the maximum difference between their results is
printed too.

Usage::

    python benchmarks/bench_sddmm.py [--threads 2] [--dims 32 64]
                                     [datasets ...]   # default: ml-100k gowalla

The data folder is :obj:`$PYG_RECSYS_DATA`, else :obj:`../shared/data`
beside the repository; data sets missing there are skipped.
"""
import argparse
import os.path as osp

import torch
from _common import data_root, load_note, timeit

from pyg_recsys.data import load_dataset
from pyg_recsys.ops import to_csr
from pyg_recsys.typing import WITH_EXT


def reference(csr, a, b):
    return (a.index_select(0, csr.row()) *
            b.index_select(0, csr.col.long())).sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('datasets', nargs='*', default=['ml-100k', 'gowalla'])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--dims', type=int, nargs='+', default=[32, 64])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not WITH_EXT:
        print('skipped: the compiled extension is not built')
        return
    print(f'{args.threads} threads, {load_note()}')
    print("| data set | nnz | d | PyTorch gathers (ms) | compiled (ms) "
          "| speed-up | max |diff| |")
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for name in args.datasets:
        if not osp.isdir(osp.join(data_root(), name)):
            print(f'skipped: {name} not found under {data_root()}')
            continue
        graph = load_dataset(name, root=data_root())
        csr = to_csr(graph.norm_adj())
        n = csr.num_rows
        for dim in args.dims:
            gen = torch.Generator().manual_seed(0)
            a = torch.randn(n, dim, generator=gen)
            b = torch.randn(n, dim, generator=gen)

            def compiled():
                return torch.ops.pyg_recsys.sddmm_csr(csr.rowptr, csr.col, a, b)

            diff = (compiled() - reference(csr, a, b)).abs().max().item()
            t_ref = timeit(lambda: reference(csr, a, b), repeat=5)
            t_ext = timeit(compiled, repeat=5)
            print(f'| {name} | {csr.col.numel():,} | {dim} | {t_ref * 1e3:.2f} '
                  f'| {t_ext * 1e3:.2f} | {t_ref / t_ext:.1f}x | {diff:.1e} |')


if __name__ == '__main__':
    main()
