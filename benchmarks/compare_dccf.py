"""DCCF against LightGCN on sslrec-sparse-yelp with SSLRec's schedule (the
``sslrec`` recipes: batch 4096, validation Recall@20 every 3 epochs, stop
after 3 without improvement, at most 300 epochs), DCCF with its official
loss, both through the package's CLI, Trainer and evaluator.

    python benchmarks/compare_dccf.py --seeds 0 1 2

Each run goes to ``runs/sparse-yelp/<model>_seed<S>/`` (checkpoint, log,
final.json; a finished run is not redone, an interrupted one resumes);
the summary (test metrics of the validation-selected epoch, mean and sd
over seeds) to ``benchmarks/results/dccf_sslrec-sparse-yelp.json``.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

from _common import REPO, data_root, require_dataset

DATASET = 'sslrec-sparse-yelp'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--models', nargs='+', default=['dccf', 'lightgcn'])
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    require_dataset(DATASET)
    env = dict(os.environ, PYG_RECSYS_DATA=data_root())
    summary = {'dataset': DATASET, 'recipe': 'sslrec',
               'protocol': 'test metrics of the epoch with the best '
                           'validation Recall@20 (evaluated every 3 epochs)',
               'models': {}}
    for model in args.models:
        rows = []
        for seed in args.seeds:
            out = osp.join(REPO, 'runs', 'sparse-yelp', f'{model}_seed{seed}')
            cmd = [sys.executable, '-m', 'pyg_recsys.cli', 'train', model,
                   '--dataset', DATASET, '--recipe', 'sslrec', '--seed',
                   str(seed), '--threads', str(args.threads), '--ks', '20,40',
                   '--out', out, '--resume', '--no-progress']
            if not osp.exists(osp.join(out, 'final.json')):
                subprocess.run(cmd, check=True, env=env)
            with open(osp.join(out, 'final.json')) as f:
                final = json.load(f)
            rows.append({'seed': seed, 'epoch': final['epoch'],
                         'epochs_run': final['epochs_run'],
                         'train_seconds': final['train_seconds'],
                         'test': {k: final['test'][k] for k in (
                             'recall@20', 'ndcg@20', 'recall@40',
                             'ndcg@40')}})
        stats = {k: (statistics.mean(r['test'][k] for r in rows),
                     statistics.pstdev(r['test'][k] for r in rows))
                 for k in ('recall@20', 'ndcg@20')}
        summary['models'][model] = {'runs': rows, 'mean_sd': stats}
        print(f'{model}: ' + ', '.join(f'{k} {m:.4f} +- {s:.4f}'
                                       for k, (m, s) in stats.items()))
    path = osp.join(REPO, 'benchmarks', 'results', f'dccf_{DATASET}.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
