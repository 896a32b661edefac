r"""The :obj:`pyg-recsys` command: train, evaluate and recommend."""
import argparse
import json
import sys
import time
from typing import Dict, List, Optional

import torch

from pyg_recsys import __version__
from pyg_recsys.train.config import MODELS


def _metrics_table(report: Dict, ks) -> str:
    names = ['recall', 'ndcg', 'precision', 'hit', 'mrr', 'map', 'f1']
    lines = []
    header = f"{'split':<6} " + ' '.join(f'{n + "@" + str(k):>11}'
                                         for k in ks for n in names[:2])
    lines.append(header)
    for split in ('valid', 'test'):
        if split in report:
            m = report[split]
            lines.append(f'{split:<6} ' + ' '.join(
                f"{m[f'{n}@{k}']:>11.4f}" for k in ks for n in names[:2]))
    return '\n'.join(lines)


def _load_graph(args):
    from pyg_recsys.data import load_dataset
    kwargs = {}
    if args.split:
        kwargs['split'] = args.split
    return load_dataset(args.dataset, root=args.root, seed=args.data_seed,
                        **kwargs)


def _bayes_kwargs(args, model_kwargs: Dict, config, graph) -> None:
    r"""The generator and sampling options of :obj:`bayes-lightgcn`:
    command-line values over the recipe's; a new training graph every epoch
    (:obj:`--resample-every` steps) unless told otherwise; the training seed
    also seeds the graph streams."""
    name = args.generator or model_kwargs.get('generator', 'peco')
    model_kwargs['generator'] = name
    gen = dict(model_kwargs.get('generator_kwargs') or {})
    options = {'epsilon': 'epsilon',
               'top_k': 'top_k' if name == 'node_copy' else 'user_top_k'}
    peco_only = {'alpha': 'alpha', 'beta': 'beta', 'item_top_k': 'item_top_k'}
    if name == 'peco':
        options.update(peco_only)
    else:
        given = [a for a in peco_only if getattr(args, a) is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} is a PECO "
                             f"option (node copying takes --epsilon and "
                             f"--top-k)")
    for arg, key in options.items():
        if getattr(args, arg) is not None:
            gen[key] = getattr(args, arg)
    model_kwargs['generator_kwargs'] = gen
    if args.num_samples is not None:
        model_kwargs['num_samples'] = args.num_samples
    model_kwargs['resample_every'] = (
        args.resample_every if args.resample_every is not None
        else -(-graph.train.size(1) // config.batch_size))
    model_kwargs['seed'] = config.seed


def cmd_train(args) -> int:
    from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = get_recipe(args.model, args.dataset, args.recipe)
    model_kwargs = dict(recipe.model_kwargs)
    if args.dim is not None and args.model in ('lightgcn', 'dccf', 'mf',
                                               'sheaf4rec', 'bayes-lightgcn'):
        model_kwargs['embedding_dim'] = args.dim
    if args.layers is not None and args.model in ('lightgcn', 'dccf',
                                                  'sheaf4rec',
                                                  'bayes-lightgcn'):
        model_kwargs['num_layers'] = args.layers
    train_kwargs = dict(recipe.train)
    for key in ('epochs', 'batch_size', 'lr', 'lr_schedule', 'lambda_reg',
                'reg_scaling', 'sampler', 'num_negatives',
                'negative_sampling', 'eval_every', 'patience', 'monitor', 'select',
                'seed', 'threads'):
        value = getattr(args, key)
        if value is not None:
            train_kwargs[key] = value
    if args.ks:
        train_kwargs['ks'] = tuple(int(k) for k in args.ks.split(','))
    config = TrainConfig(**train_kwargs)

    graph = _load_graph(args)
    print(f'pyg-recsys {__version__}: {graph}', file=sys.stderr)
    if args.model == 'bayes-lightgcn':
        _bayes_kwargs(args, model_kwargs, config, graph)
    torch.manual_seed(config.seed)
    model = build_model(args.model, graph, **model_kwargs)
    meta = {'model': args.model, 'model_kwargs': model_kwargs,
            'dataset': args.dataset, 'split': args.split or '',
            'data_seed': args.data_seed, 'recipe': args.recipe,
            'version': __version__}
    trainer = Trainer(model, graph, config, out_dir=args.out,
                      progress=not args.no_progress, meta=meta)
    if args.resume and trainer.resume():
        print(f'resumed from epoch {trainer.epoch}', file=sys.stderr)
    start = time.perf_counter()
    report = trainer.fit()
    wall = time.perf_counter() - start
    print(f'\n{args.model} on {args.dataset}: {report["selection"]}, epoch '
          f'{report["epoch"]} of {report["epochs_run"]}, '
          f'{report["train_seconds"]:.1f} s training, {wall:.1f} s in all')
    print(_metrics_table(report, config.ks))
    if args.json:
        print(json.dumps(report))
    if args.out:
        print(f'checkpoint, log and curve in {args.out}', file=sys.stderr)
    return 0


def _from_checkpoint(args):
    from pyg_recsys.train import TrainConfig, Trainer, build_model
    from pyg_recsys.train.checkpoint import load_checkpoint
    state = load_checkpoint(args.checkpoint)
    meta = state.get('meta', {})
    if 'model' not in meta:
        raise ValueError(f"'{args.checkpoint}' lacks the model description")
    for key, name in (('dataset', 'dataset'), ('split', 'split'),
                      ('data_seed', 'data_seed')):
        if getattr(args, name, None) in (None, '') and key in meta:
            setattr(args, name, meta[key] if meta[key] != '' else None)
    graph = _load_graph(args)
    model = build_model(meta['model'], graph, **meta.get('model_kwargs', {}))
    model.load_state_dict(state['best_state'] or state['model'])
    trainer = Trainer(model, graph, TrainConfig.from_dict(state['config']),
                      progress=False, meta=meta)
    return trainer, graph, model


def cmd_evaluate(args) -> int:
    trainer, graph, _ = _from_checkpoint(args)
    report = {split: trainer.evaluate(split) for split in args.splits
              if getattr(graph, split) is not None}
    print(_metrics_table(report, trainer.config.ks))
    if args.json:
        print(json.dumps(report))
    return 0


def cmd_recommend(args) -> int:
    trainer, graph, model = _from_checkpoint(args)
    users = torch.tensor([int(u) for u in args.users.split(',')])
    exclude = graph.csr('train')
    top = model.recommend(users, args.k, adj=trainer.adj, exclude=exclude)
    for u, items in zip(users.tolist(), top.tolist()):
        print(f'{u}\t' + ' '.join(str(i) for i in items if i >= 0))
    return 0


def cmd_datasets(args) -> int:
    from pyg_recsys.data import list_datasets
    for name in list_datasets():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='pyg-recsys',
        description='Graph-based recommendation on PyTorch Geometric.')
    p.add_argument('--version', action='version', version=__version__)
    sub = p.add_subparsers(dest='command', required=True)

    def data_args(q, required=True):
        q.add_argument('--dataset', required=required,
                       help='data set name (see `pyg-recsys datasets`)')
        q.add_argument('--root', default=None,
                       help='directory holding <dataset>/ (default: '
                       '$PYG_RECSYS_DATA, else the cache directory)')
        q.add_argument('--split', default=None,
                       help='split protocol for data sets without a fixed '
                       'split: random (default), temporal, loo')
        q.add_argument('--data-seed', type=int, default=0,
                       help='seed of the data split (default 0)')

    t = sub.add_parser('train', help='train a model and report its metrics')
    t.add_argument('model', choices=list(MODELS))
    data_args(t)
    t.add_argument('--recipe', default='default')
    t.add_argument('--epochs', type=int)
    t.add_argument('--batch-size', type=int)
    t.add_argument('--lr', type=float)
    t.add_argument('--lr-schedule', dest='lr_schedule',
                   choices=['constant', 'cosine'])
    t.add_argument('--lambda-reg', type=float)
    t.add_argument('--reg-scaling', choices=['lightgcn', 'dccf', 'pyg'])
    t.add_argument('--sampler', choices=['per_user', 'per_interaction'])
    t.add_argument('--num-negatives', type=int,
                   help='negatives (or, with dns, candidates) per positive')
    t.add_argument('--negative-sampling', choices=['uniform', 'dns'])
    t.add_argument('--dim', type=int, help='embedding size')
    t.add_argument('--layers', type=int, help='propagation layers')
    b = t.add_argument_group('bayes-lightgcn (sampled graphs)')
    b.add_argument('--generator', choices=['node_copy', 'peco'],
                   help='graph generator (default: the recipe\'s, peco)')
    b.add_argument('--num-samples', type=int,
                   help='sampled graphs averaged at inference')
    b.add_argument('--resample-every', type=int,
                   help='optimiser steps per sampled training graph '
                   '(default: one epoch)')
    b.add_argument('--epsilon', type=float,
                   help="probability that a user's items are replaced")
    b.add_argument('--top-k', type=int, help='similar users per user')
    b.add_argument('--alpha', type=float,
                   help='PECO: weight of item concurrence')
    b.add_argument('--beta', type=float, help='PECO: item-degree exponent')
    b.add_argument('--item-top-k', type=int,
                   help='PECO: co-occurring items per item')
    t.add_argument('--eval-every', type=int)
    t.add_argument('--patience', type=int)
    t.add_argument('--monitor', help="e.g. 'ndcg@10'")
    t.add_argument('--select', choices=['valid', 'last', 'test'])
    t.add_argument('--ks', help="cut-offs, e.g. '10,20'")
    t.add_argument('--seed', type=int)
    t.add_argument('--threads', type=int)
    t.add_argument('--out', help='directory for checkpoint, log and curve')
    t.add_argument('--resume', action='store_true',
                   help='continue from OUT/checkpoint.pt if present')
    t.add_argument('--no-progress', action='store_true')
    t.add_argument('--json', action='store_true',
                   help='also print the report as JSON')
    t.set_defaults(func=cmd_train)

    e = sub.add_parser('evaluate', help='evaluate a checkpoint')
    e.add_argument('--checkpoint', required=True)
    data_args(e, required=False)
    e.add_argument('--splits', nargs='+', default=['valid', 'test'])
    e.add_argument('--json', action='store_true')
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser('recommend', help='top-k items for some users')
    r.add_argument('--checkpoint', required=True)
    data_args(r, required=False)
    r.add_argument('--users', required=True, help="comma-separated user ids")
    r.add_argument('-k', '--k', type=int, default=10)
    r.set_defaults(func=cmd_recommend)

    d = sub.add_parser('datasets', help='list the known data sets')
    d.set_defaults(func=cmd_datasets)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f'pyg-recsys: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
