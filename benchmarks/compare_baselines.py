"""LightGCN against BPR-MF and most-popular, same pipeline and evaluator.

    python benchmarks/compare_baselines.py --dataset ml-100k --seeds 0 1 2
    python benchmarks/compare_baselines.py --dataset lastfm --seeds 0
    python benchmarks/compare_baselines.py --dataset gowalla --seeds 0 --recipe budget

For data sets without a fixed split (ml-100k) the seed is the split seed and
the model seed; for fixed splits only the model seed changes. Prints a table
(mean and standard deviation over seeds) and writes
``benchmarks/results/baselines_<dataset>.json``.
"""
import argparse
import json
import os.path as osp
import statistics

import torch
from _common import load_note, require_dataset

from pyg_recsys import __version__
from pyg_recsys.data import load_dataset
from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe
from pyg_recsys.train.config import Recipe

# Fixed-budget recipes for data sets without a validation split: every model
# gets the same number of epochs and the final epoch is reported.
BUDGET = {
    'lastfm': dict(epochs=100, batch_size=2048, eval_every=10, select='last',
                   patience=0, monitor='ndcg@20'),
    'gowalla': dict(epochs=30, batch_size=4096, eval_every=10, select='last',
                    patience=0, monitor='ndcg@20'),
}
LR = {'lightgcn': 5e-3, 'mf': 1e-3}


def recipe_for(model: str, dataset: str, name: str) -> Recipe:
    if name != 'budget':
        return get_recipe(model, dataset, name)
    train = dict(BUDGET[dataset])
    if model in LR:
        train.update(lr=LR[model], lambda_reg=1e-4)
    kwargs = {'lightgcn': {'embedding_dim': 64, 'num_layers': 3},
              'mf': {'embedding_dim': 64}}.get(model, {})
    return Recipe(kwargs, train, 'fixed budget, final epoch')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', default='ml-100k')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--recipe', default=None,
                   help="'demo' for ml-100k, 'budget' for fixed splits")
    p.add_argument('--models', nargs='+',
                   default=['mostpop', 'mf', 'lightgcn'])
    p.add_argument('--lr', type=float, default=None,
                   help='override the learning rate of the trained models')
    p.add_argument('--tag', default='', help='suffix of the output file')
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    recipe_name = args.recipe or ('budget' if args.dataset in BUDGET
                                  else 'demo')
    root = require_dataset(args.dataset)
    print(f'{args.dataset}, recipe {recipe_name}, seeds {args.seeds}, '
          f'{args.threads} threads, {load_note()}')
    rows = {}
    for model_name in args.models:
        recipe = recipe_for(model_name, args.dataset, recipe_name)
        runs = []
        for seed in args.seeds:
            graph = load_dataset(args.dataset, root=root, seed=seed)
            torch.manual_seed(seed)
            model = build_model(model_name, graph, **recipe.model_kwargs)
            train = {**recipe.train, 'seed': seed}
            if args.lr is not None and model_name != 'mostpop':
                train['lr'] = args.lr
            config = TrainConfig(**train)
            report = Trainer(model, graph, config, progress=False).fit()
            runs.append({'seed': seed, 'epoch': report['epoch'],
                         'epochs_run': report['epochs_run'],
                         'train_seconds': report['train_seconds'],
                         'selection': report['selection'],
                         'test': report['test']})
            t = report['test']
            print(f"  {model_name:<9} seed {seed}: R@20 {t['recall@20']:.4f} "
                  f"N@20 {t['ndcg@20']:.4f} R@10 {t['recall@10']:.4f} "
                  f"N@10 {t['ndcg@10']:.4f}  epoch {report['epoch']}/"
                  f"{report['epochs_run']}  {report['train_seconds']:.1f} s",
                  flush=True)
        rows[model_name] = {'recipe': {'model': recipe.model_kwargs,
                                       'train': recipe.train},
                            'runs': runs}

    def stat(runs, key):
        vals = [r['test'][key] for r in runs]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return statistics.mean(vals), sd

    print(f"\n{'model':<9} {'R@20':>16} {'N@20':>16} {'R@10':>16} "
          f"{'N@10':>16} {'train s':>8}")
    for name, row in rows.items():
        cells = [stat(row['runs'], k) for k in
                 ('recall@20', 'ndcg@20', 'recall@10', 'ndcg@10')]
        secs = statistics.mean(r['train_seconds'] for r in row['runs'])
        print(f'{name:<9} ' + ' '.join(f'{m:.4f} ± {s:.4f}'.rjust(16)
                                       for m, s in cells) + f' {secs:>8.1f}')
        row['mean'] = {k: stat(row['runs'], k)[0] for k in
                       ('recall@20', 'ndcg@20', 'recall@10', 'ndcg@10')}
        row['mean']['train_seconds'] = secs
    out = osp.join(osp.dirname(osp.abspath(__file__)), 'results',
                   f'baselines_{args.dataset}{args.tag}.json')
    with open(out, 'w') as f:
        json.dump({'dataset': args.dataset, 'recipe': recipe_name,
                   'lr_override': args.lr,
                   'seeds': args.seeds, 'version': __version__,
                   'models': rows}, f, indent=1)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
