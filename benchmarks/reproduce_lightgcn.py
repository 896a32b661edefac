"""LightGCN at paper quality on Gowalla / Yelp2018 (LightGCN split).

    python benchmarks/reproduce_lightgcn.py --dataset gowalla
    python benchmarks/reproduce_lightgcn.py --dataset yelp2018

Trains the package's ``paper`` recipe (``pyg-recsys train lightgcn --dataset
gowalla --recipe paper`` runs the same), evaluates the test split every
``eval_every`` epochs with the package's full-ranking evaluator (training
items excluded, all other items ranked), and writes
``benchmarks/results/lightgcn_<dataset>.json`` (the curve against epoch and
wall-clock seconds, the final-epoch block, the best-on-test block, the recipe,
the package version and the time per phase) and the PNG beside it. The JSON
is rewritten after every evaluation, so an interrupted run keeps its curve.

Selection rules are reported separately and labelled: ``final`` is the last
epoch (no selection); ``best_on_test`` is the best test Recall@20 among the
evaluated epochs (the rule of the LightGCN paper and code, which evaluate the
test split every 20 epochs; optimistic by construction).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import torch
from _common import REPO, load_note, require_dataset

from pyg_recsys import __version__
from pyg_recsys.data import load_dataset
from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe

TARGETS = {'gowalla': (0.1824, 0.1547), 'yelp2018': (0.0635, 0.0524)}


def plot(curve, path, title, target):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, x_key, x_label in ((axes[0], 'epoch', 'epoch'),
                               (axes[1], 'wall_seconds',
                                'wall-clock seconds')):
        for key, style in (('recall@20', '-'), ('ndcg@20', '--')):
            ax.plot([p[x_key] for p in curve], [p[key] for p in curve],
                    style, marker='.', label=f'test {key}')
        for value, style in zip(target, ('-', '--')):
            ax.axhline(value, color='grey', lw=0.8, ls=style)
        ax.set_xlabel(x_label)
    axes[0].set_ylabel('metric (grey: targets)')
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', choices=sorted(TARGETS), default='gowalla')
    p.add_argument('--recipe', default='paper')
    p.add_argument('--epochs', type=int, help='override the recipe')
    p.add_argument('--lr', type=float, help='override the recipe')
    p.add_argument('--batch-size', type=int, help='override the recipe')
    p.add_argument('--negative-sampling', choices=['uniform', 'dns'],
                   help='override the recipe')
    p.add_argument('--num-negatives', type=int, help='override the recipe')
    p.add_argument('--tag', default='', help='suffix of the output files')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=osp.join(REPO, 'benchmarks', 'results'))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = require_dataset(args.dataset)
    recipe = get_recipe('lightgcn', args.dataset, args.recipe)
    train = dict(recipe.train, seed=args.seed, threads=args.threads,
                 ks=(20, ), select='last')
    for key in ('epochs', 'lr', 'batch_size', 'negative_sampling',
                'num_negatives'):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    config = TrainConfig(**train)

    start = time.perf_counter()
    graph = load_dataset(args.dataset, root=root)
    torch.manual_seed(config.seed)
    model = build_model('lightgcn', graph, **recipe.model_kwargs)
    trainer = Trainer(model, graph, config, progress=False,
                      meta={'model': 'lightgcn', 'dataset': args.dataset})
    print(f'{graph}; recipe {args.recipe}: {recipe.note}; {args.threads} '
          f'threads; {load_note()}', flush=True)

    os.makedirs(args.out, exist_ok=True)
    stem = osp.join(args.out, f'lightgcn_{args.dataset}{args.tag}')
    curve, result = [], {}

    def block(point):
        return {k: point[k] for k in ('epoch', 'recall@20', 'ndcg@20',
                                      'wall_seconds', 'train_seconds')}

    def on_eval(record):
        point = {'epoch': record['epoch'],
                 'wall_seconds': round(time.perf_counter() - start, 1),
                 'train_seconds': record['train_seconds'],
                 'recall@20': record['test']['recall@20'],
                 'ndcg@20': record['test']['ndcg@20']}
        curve.append(point)
        best = max(curve, key=lambda q: q['recall@20'])
        result.update({
            'dataset': args.dataset, 'version': __version__,
            'recipe': {'name': args.recipe, 'note': recipe.note,
                       'overrides': {k: getattr(args, k)
                                     for k in ('epochs', 'lr', 'batch_size',
                                               'negative_sampling',
                                               'num_negatives')
                                     if getattr(args, k) is not None},
                       'model': recipe.model_kwargs, 'train': config.to_dict()},
            'protocol': 'LightGCN split (train.txt/test.txt), full ranking '
                        'over all items minus the user\'s training items, '
                        'metrics averaged over test users',
            'threads': args.threads,
            'targets': dict(zip(('recall@20', 'ndcg@20'),
                                TARGETS[args.dataset])),
            'final': block(point) if record['epoch'] == config.epochs
            else None,
            'best_on_test': dict(block(best), rule='best test recall@20 '
                                 f'among epochs evaluated every '
                                 f'{config.eval_every}'),
            'last_evaluated': block(point),
            'profile_seconds': {k: round(v, 1)
                                for k, v in trainer.profile.items()},
            'curve': curve,
        })
        with open(stem + '.json', 'w') as f:
            json.dump(result, f, indent=1)
        print(f"epoch {point['epoch']:4d}  {point['wall_seconds']:7.1f} s  "
              f"R@20 {point['recall@20']:.4f}  N@20 {point['ndcg@20']:.4f}",
              flush=True)

    trainer.fit(on_eval=on_eval)
    result['wall_seconds'] = round(time.perf_counter() - start, 1)
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    plot(curve, stem + '.png', f'LightGCN on {args.dataset} '
         f'({args.recipe} recipe, {args.threads} threads)',
         TARGETS[args.dataset])
    final, best = result['final'], result['best_on_test']
    r_t, n_t = TARGETS[args.dataset]
    print(f"\nfinal epoch {final['epoch']}: R@20 {final['recall@20']:.4f} "
          f"N@20 {final['ndcg@20']:.4f}; best on test (epoch "
          f"{best['epoch']}): R@20 {best['recall@20']:.4f} N@20 "
          f"{best['ndcg@20']:.4f}; targets {r_t} / {n_t}; "
          f"{result['wall_seconds']:.0f} s wall; phases "
          f"{result['profile_seconds']}")
    return 0 if final['recall@20'] >= r_t and final['ndcg@20'] >= n_t else 1


if __name__ == '__main__':
    sys.exit(main())
