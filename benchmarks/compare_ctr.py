"""C-3PO-style click model on ML-100K impressions against its baselines and
ablations, seeds side by side; writes ``results/ctr_<dataset>.json``.

    python benchmarks/compare_ctr.py --seeds 0 1 2
    python benchmarks/compare_ctr.py --dataset book-crossing --seeds 0 1 2

Book-Crossing (RippleNet's file, no time) runs the RippleNet/KGCN protocol
instead (``run_ripplenet_protocol``: their seed-555 6:2:2 split, the network
without the sequence, user and item ids, out-of-fold LightGCN scores), with
the AUC both global and as their code computes it (mean over batches of
1,024), beside their published AUCs (RippleNet 0.729, KGCN 0.738).

Protocol (an adaptation: ML-100K has no impressions, so every rating is a
shown movie and a rating >= 4 a click): impressions in time order, a global
temporal split into history / train / valid / test (50 / 30 / 10 / 10% by
time), LightGCN trained on the history window's clicks gives the CF
features, every other feature reads only earlier events; the click models
train on the train window (BCE, Adam, L2 as weight decay), are selected on
validation AUC and reported on test: AUC, GAUC (per-user AUC weighted by
impressions), log loss, and the expected calibration error of deciles.
Baselines: the global click rate, the per-user earlier click rate (its
smoothing chosen on validation log loss), logistic regression on the same
features, and the network without the sequence and without the CF features.
"""
import argparse
import json
import os.path as osp
import sys
import time

import torch
from _common import REPO, load_note, require_dataset

from pyg_recsys.data.impressions import ml100k_impressions, read_ripplenet
from pyg_recsys.train.ctr import (
    ClickConfig,
    run_click_experiment,
    run_ripplenet_protocol,
    summary_rows,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='ml-100k',
                   choices=['ml-100k', 'book-crossing'])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=None)
    args = p.parse_args()
    out = args.out or osp.join(REPO, 'benchmarks', 'results',
                               f'ctr_{args.dataset}.json')
    torch.set_num_threads(args.threads)
    root = require_dataset(args.dataset)
    bx = args.dataset == 'book-crossing'
    imp = (read_ripplenet(osp.join(root, 'book-crossing',
                                   'ratings_final.txt.gz')) if bx
           else ml100k_impressions(root))
    print(f'{imp}; {args.threads} threads; {load_note()}')
    runs = []
    start = time.perf_counter()
    for seed in args.seeds:
        print(f'seed {seed}:')
        run = run_ripplenet_protocol if bx else run_click_experiment
        runs.append(run(imp, ClickConfig(seed=seed), verbose=True))
    keys = ('auc', 'batch_mean_auc', 'logloss', 'ece') if bx else \
        ('auc', 'gauc', 'logloss', 'ece')
    print(f'\n{len(args.seeds)} seeds, test, mean ± sd:')
    print('| model | ' + ' | '.join(keys) + ' |')
    print('| --- ' * (len(keys) + 1) + '|')
    for row in summary_rows(runs, keys):
        print('| ' + ' | '.join(row) + ' |')
    if bx:
        print('published (their protocol, batch-mean AUC): RippleNet 0.729, '
              'KGCN 0.738')
    seconds = [r['results']['full']['train_seconds'] for r in runs]
    print(f"full model training: {min(seconds):.1f}-{max(seconds):.1f} s; "
          f"a whole seed (CF models, networks, baselines): "
          f"{min(r['wall_seconds'] for r in runs):.1f}-"
          f"{max(r['wall_seconds'] for r in runs):.1f} s")
    with open(out, 'w') as f:
        json.dump({'protocol': __doc__.split('Protocol')[1].strip(),
                   'seeds': args.seeds, 'threads': args.threads,
                   'runs': runs,
                   'wall_seconds': round(time.perf_counter() - start, 1)},
                  f, indent=1)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
