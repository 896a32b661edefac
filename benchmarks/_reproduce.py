"""The training-curve machinery of the reproduce_*.py scripts."""
import argparse
import json
import os
import os.path as osp
import time

import torch
from _common import REPO, load_note, require_dataset

from pyg_recsys import __version__
from pyg_recsys.data import InteractionGraph, load_dataset
from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe


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


def curve_point(record, start: float) -> dict:
    r"""One point of a training curve from a Trainer evaluation record
    (:obj:`start`: the run's :func:`time.perf_counter` origin)."""
    return {'epoch': record['epoch'],
            'wall_seconds': round(time.perf_counter() - start, 1),
            'train_seconds': record['train_seconds'],
            'recall@20': record['test']['recall@20'],
            'ndcg@20': record['test']['ndcg@20']}


def load_bars(name: str, root: str):
    r"""A BARS split as BARS evaluates it: a validation file, where the
    split has one (ML-1M), is dropped (neither trained on nor masked).
    Returns the graph and whether something was dropped."""
    graph = load_dataset(name, root=root)
    if graph.valid is None:
        return graph, False
    return InteractionGraph(graph.num_users, graph.num_items, graph.train,
                            test=graph.test, name=graph.name), True


# Recipe settings that the command line may override.
OVERRIDES = ('epochs', 'lr', 'lambda_reg', 'batch_size', 'negative_sampling',
             'num_negatives', 'eval_every')


def reproduce(model_name: str, datasets, targets, default_recipe: str,
              protocol: str, argv=None, drop_valid: bool = False) -> int:
    """Trains :obj:`model_name` with a named recipe, evaluating test every
    ``eval_every`` epochs, and writes ``<model>_<dataset><tag>.json`` / .png.
    ``targets`` maps a data set to (recall@20, ndcg@20) or None; returns 0
    when the final epoch reaches them (or there are none). With
    :obj:`drop_valid`, a validation split is dropped: its items are neither
    trained on nor masked at test time, as in a protocol that has only
    train and test files."""
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', choices=sorted(datasets),
                   default=sorted(datasets)[0])
    p.add_argument('--recipe', default=default_recipe)
    p.add_argument('--epochs', type=int, help='override the recipe')
    p.add_argument('--lr', type=float, help='override the recipe')
    p.add_argument('--lambda-reg', type=float, help='override the recipe')
    p.add_argument('--batch-size', type=int, help='override the recipe')
    p.add_argument('--negative-sampling', choices=['uniform', 'dns'],
                   help='override the recipe')
    p.add_argument('--num-negatives', type=int, help='override the recipe')
    p.add_argument('--eval-every', type=int, help='override the recipe')
    p.add_argument('--tag', default='', help='suffix of the output files')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=osp.join(REPO, 'benchmarks', 'results'))
    args = p.parse_args(argv)
    target = targets.get(args.dataset)
    torch.set_num_threads(args.threads)
    root = require_dataset(args.dataset)
    recipe = get_recipe(model_name, args.dataset, args.recipe)
    train = dict(recipe.train, seed=args.seed, threads=args.threads,
                 ks=(20, ), select='last', monitor='ndcg@20', patience=0)
    overrides = {k: getattr(args, k) for k in OVERRIDES
                 if getattr(args, k) is not None}
    train.update(overrides)
    config = TrainConfig(**train)

    start = time.perf_counter()
    if drop_valid:
        graph, dropped = load_bars(args.dataset, root)
    else:
        graph, dropped = load_dataset(args.dataset, root=root), False
    if dropped:
        protocol += ('; the split\'s validation file is dropped: its items '
                     'are neither trained on nor masked')
    torch.manual_seed(config.seed)
    model = build_model(model_name, graph, **recipe.model_kwargs)
    trainer = Trainer(model, graph, config, progress=False,
                      meta={'model': model_name, 'dataset': args.dataset})
    print(f'{graph}; recipe {args.recipe}: {recipe.note}; {args.threads} '
          f'threads; {load_note()}', flush=True)

    os.makedirs(args.out, exist_ok=True)
    stem = osp.join(args.out, f'{model_name}_{args.dataset}{args.tag}')
    curve, result = [], {}

    def block(point):
        return {k: point[k] for k in ('epoch', 'recall@20', 'ndcg@20',
                                      'wall_seconds', 'train_seconds')}

    def on_eval(record):
        point = curve_point(record, start)
        curve.append(point)
        best = max(curve, key=lambda q: q['recall@20'])
        result.update({
            'dataset': args.dataset, 'version': __version__,
            'recipe': {'name': args.recipe, 'note': recipe.note,
                       'overrides': overrides,
                       'model': recipe.model_kwargs, 'train': config.to_dict()},
            'model': model_name, 'protocol': protocol,
            'threads': args.threads,
            'targets': (dict(zip(('recall@20', 'ndcg@20'), target))
                        if target else None),
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
    plot(curve, stem + '.png', f'{model.__class__.__name__} on '
         f'{args.dataset} ({args.recipe} recipe, {args.threads} threads)',
         target or ())
    final, best = result['final'], result['best_on_test']
    print(f"\nfinal epoch {final['epoch']}: R@20 {final['recall@20']:.4f} "
          f"N@20 {final['ndcg@20']:.4f}; best on test (epoch "
          f"{best['epoch']}): R@20 {best['recall@20']:.4f} N@20 "
          f"{best['ndcg@20']:.4f}; targets {target}; "
          f"{result['wall_seconds']:.0f} s wall; phases "
          f"{result['profile_seconds']}")
    if not target:
        return 0
    return int(final['recall@20'] < target[0] or final['ndcg@20'] < target[1])
