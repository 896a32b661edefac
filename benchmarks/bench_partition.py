"""How much of the node table each rank's block of the adjacency reads when
the rows are partitioned (``row_partition``, nnz-balanced): the halo that
``partitioned_propagate(exchange='halo')`` fetches per layer, against the
(w - 1) / w of the table that an all-gather brings. Counting only, no
processes, no timing.

    python benchmarks/bench_partition.py --datasets gowalla yelp2018
"""
import argparse
import sys

import torch
from _common import data_root, require_dataset

from pyg_recsys.data import load_dataset
from pyg_recsys.distributed import row_partition
from pyg_recsys.ops.csr import to_csr


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', nargs='+', default=['gowalla', 'yelp2018'])
    p.add_argument('--world-sizes', type=int, nargs='+', default=[2, 4, 8])
    args = p.parse_args()
    print('| data set | w | halo rows / N per rank (min-max) | all-gather |')
    print('| --- | --- | --- | --- |')
    for name in args.datasets:
        require_dataset(name)
        csr = to_csr(load_dataset(name, root=data_root()).norm_adj())
        n = csr.num_rows
        for w in args.world_sizes:
            shares = []
            for r0, r1 in row_partition(csr.rowptr, w):
                lo, hi = int(csr.rowptr[r0]), int(csr.rowptr[r1])
                cols = torch.unique(csr.col[lo:hi].long())
                shares.append(int(((cols < r0) | (cols >= r1)).sum()) / n)
            print(f'| {name} | {w} | {min(shares):.3f}-{max(shares):.3f} | '
                  f'{(w - 1) / w:.3f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
