"""C-3PO-style click model on ML-100K impressions against its baselines and
ablations, seeds side by side; writes ``results/ctr_ml-100k.json``.

    python benchmarks/compare_ctr.py --seeds 0 1 2

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

from pyg_recsys.data.impressions import ml100k_impressions
from pyg_recsys.train.ctr import ClickConfig, run_click_experiment, summary_rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=osp.join(REPO, 'benchmarks', 'results',
                                             'ctr_ml-100k.json'))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    imp = ml100k_impressions(require_dataset('ml-100k'))
    print(f'{imp}; {args.threads} threads; {load_note()}')
    runs = []
    start = time.perf_counter()
    for seed in args.seeds:
        print(f'seed {seed}:')
        runs.append(run_click_experiment(imp, ClickConfig(seed=seed),
                                         verbose=True))
    print(f'\n{len(args.seeds)} seeds, test window, mean ± sd:')
    print('| model | AUC | GAUC | log loss | ECE |')
    print('| --- | --- | --- | --- | --- |')
    for row in summary_rows(runs):
        print('| ' + ' | '.join(row) + ' |')
    seconds = [r['results']['full']['train_seconds'] for r in runs]
    print(f"full model training: {min(seconds):.1f}-{max(seconds):.1f} s; "
          f"a whole seed (CF model, 4 networks, baselines): "
          f"{min(r['wall_seconds'] for r in runs):.1f}-"
          f"{max(r['wall_seconds'] for r in runs):.1f} s")
    with open(args.out, 'w') as f:
        json.dump({'protocol': __doc__.split('Protocol')[1].strip(),
                   'seeds': args.seeds, 'threads': args.threads,
                   'runs': runs,
                   'wall_seconds': round(time.perf_counter() - start, 1)},
                  f, indent=1)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
