"""Trains several models on one BARS split, each with its named recipe, and
evaluates them and their :class:`pyg_recsys.nn.ScoreEnsemble` (equal
weights of per-user standardised scores) on test (issue 26).

    python benchmarks/reproduce_ensemble.py --dataset gowalla \\
        --members lightgcn:paper simplex:cpu
    python benchmarks/reproduce_ensemble.py --dataset ml-1m \\
        --members simplex:cpu:0 simplex:cpu:1 --tag _simplex2

Protocol: the BARS splits in ``../shared/data`` (or ``$PYG_RECSYS_DATA``),
full ranking over all items minus the user's training items, metrics
averaged over test users. Every member runs its recipe to its last epoch
(no selection on test); the ensemble fuses the final members with equal
weights (nothing is tuned on test). The wall clock counts everything: data
loading, every member's training and evaluations, and the fusion. Writes
``ensemble_<dataset><tag>.json`` / ``.png`` into ``benchmarks/results``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import torch
from _common import REPO, load_note, require_dataset
from _reproduce import curve_point, load_bars
from reproduce_leaders import PROTOCOL, TARGETS

from pyg_recsys import __version__
from pyg_recsys.metrics import Evaluator
from pyg_recsys.nn import ScoreEnsemble
from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe


def plot(members, ensemble, path, title, target):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in zip(axes, ('recall@20', 'ndcg@20')):
        for m in members:
            ax.plot([p['wall_seconds'] for p in m['curve']],
                    [p[key] for p in m['curve']], marker='.',
                    label=f"{m['model']} ({m['recipe']})")
        ax.plot([ensemble['wall_seconds']], [ensemble[key]], 'k*',
                markersize=12, label='ensemble')
        if target:
            ax.axhline(target[key], color='grey', lw=0.8)
        ax.set_xlabel('wall-clock seconds (members run one after another)')
        ax.set_ylabel(f'test {key} (grey: target)')
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', choices=sorted(TARGETS), default='gowalla')
    p.add_argument('--members', nargs='+', required=True,
                   metavar='MODEL:RECIPE[:SEED]',
                   help='e.g. lightgcn:paper simplex:cpu (SEED: the '
                   'member\'s seed, default --seed)')
    p.add_argument('--weights', type=float, nargs='+',
                   help='one per member (default: equal)')
    p.add_argument('--epochs', type=int, nargs='+',
                   help='override each member\'s epochs (a smoke run)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tag', default='', help='suffix of the output files')
    p.add_argument('--out', default=osp.join(REPO, 'benchmarks', 'results'))
    args = p.parse_args(argv)
    specs = []
    for spec in args.members:
        parts = spec.split(':')
        if len(parts) not in (2, 3) or not all(parts) or (
                len(parts) == 3 and not parts[2].isdigit()):
            p.error(f"--members takes MODEL:RECIPE or MODEL:RECIPE:SEED, "
                    f"got '{spec}'")
        model, recipe = parts[:2]
        seed = int(parts[2]) if len(parts) == 3 else args.seed
        specs.append((model, recipe, get_recipe(model, args.dataset, recipe),
                      seed))
    if len(specs) < 2:
        p.error('--members: an ensemble needs at least two')
    if args.epochs and len(args.epochs) != len(specs):
        p.error(f'--epochs: one per member ({len(specs)})')
    torch.set_num_threads(args.threads)
    root = require_dataset(args.dataset)
    target = dict(zip(('recall@20', 'ndcg@20'), TARGETS[args.dataset]))

    start = time.perf_counter()
    graph, dropped = load_bars(args.dataset, root)
    protocol = PROTOCOL + ('; the split\'s validation file is dropped'
                           if dropped else '')
    print(f'{graph}; {args.threads} threads; {load_note()}', flush=True)
    models, members = [], []
    for i, (model_name, recipe_name, recipe, seed) in enumerate(specs):
        train = dict(recipe.train, seed=seed, threads=args.threads,
                     ks=(20, ), select='last', monitor='ndcg@20', patience=0)
        if args.epochs:
            train['epochs'] = args.epochs[i]
        config = TrainConfig(**train)
        torch.manual_seed(config.seed)
        model = build_model(model_name, graph, **recipe.model_kwargs)
        trainer = Trainer(model, graph, config, progress=False)
        curve = []
        print(f'{model_name} ({recipe_name}, seed {seed}): {recipe.note}',
              flush=True)

        def on_eval(record, curve=curve):
            curve.append(curve_point(record, start))
            q = curve[-1]
            print(f"  epoch {q['epoch']:4d}  {q['wall_seconds']:7.1f} s  "
                  f"R@20 {q['recall@20']:.4f}  N@20 {q['ndcg@20']:.4f}",
                  flush=True)

        trainer.fit(on_eval=on_eval)
        model.eval()
        models.append(model)
        members.append({'model': model_name, 'recipe': recipe_name,
                        'seed': seed, 'note': recipe.note,
                        'model_args': recipe.model_kwargs,
                        'train': config.to_dict(), 'final': curve[-1],
                        'curve': curve})

    ensemble = ScoreEnsemble(models, args.weights)
    out = ensemble.get_embedding(graph.norm_adj())
    U = graph.num_users
    metrics = Evaluator(graph, split='test', ks=(20, )).evaluate(out[:U],
                                                                 out[U:])
    fused = {'weights': ensemble.weights,
             'recall@20': metrics['recall@20'],
             'ndcg@20': metrics['ndcg@20'],
             'wall_seconds': round(time.perf_counter() - start, 1)}
    result = {'dataset': args.dataset, 'version': __version__,
              'protocol': protocol, 'threads': args.threads,
              'seed': args.seed, 'targets': target,
              'selection': 'every member at its final epoch; equal '
                           'weights unless --weights',
              'members': members, 'ensemble': fused,
              'wall_seconds': fused['wall_seconds']}
    os.makedirs(args.out, exist_ok=True)
    stem = osp.join(args.out, f'ensemble_{args.dataset}{args.tag}')
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    plot(members, fused, stem + '.png',
         f"ScoreEnsemble of {' + '.join(m['model'] for m in members)} on "
         f"{args.dataset} ({args.threads} threads)", target)
    for m in members:
        q = m['final']
        print(f"{m['model']:<10} R@20 {q['recall@20']:.4f}  "
              f"N@20 {q['ndcg@20']:.4f}")
    print(f"{'ensemble':<10} R@20 {fused['recall@20']:.4f}  N@20 "
          f"{fused['ndcg@20']:.4f}; targets {target}; "
          f"{fused['wall_seconds']:.0f} s wall; wrote {stem}.json")
    return int(fused['recall@20'] < target['recall@20']
               or fused['ndcg@20'] < target['ndcg@20'])


if __name__ == '__main__':
    sys.exit(main())
