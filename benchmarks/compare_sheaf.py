"""Sheaf4Rec (scalar and vector-space stalks) against LightGCN, same pipeline.

    python benchmarks/compare_sheaf.py --dataset ml-100k
    python benchmarks/compare_sheaf.py --dataset facebook-books
    python benchmarks/compare_sheaf.py --dataset ml-1m --seeds 0
    python benchmarks/compare_sheaf.py --merge a.json b.json   # join runs

Every model gets the same training budget on a data set (batch size,
learning rate, L2, maximum epochs, evaluation every few epochs with early
stopping on validation NDCG@10, the best-on-validation model reported on
test). For ML-100K and Facebook Books the seed is the split seed (random
80/10/10 per user) and the model seed; ML-1M has a fixed split. Metrics are
the package's default evaluator (full ranking, training items excluded, mean
over test users; F1@10 is the per-user F1 averaged). Prints mean and
standard deviation over the seeds and the mean epoch time, and writes
``benchmarks/results/sheaf_<dataset>.json``.
"""
import argparse
import json
import os.path as osp
import statistics

import torch
from _common import load_note, require_dataset

from pyg_recsys import __version__
from pyg_recsys.data import load_dataset
from pyg_recsys.train import TrainConfig, Trainer, build_model

# One budget per data set, shared by every model. A Sheaf4Rec step
# propagates the whole graph through ten layers whatever the batch size, so
# large batches (few steps an epoch) keep its epochs short on two cores;
# ML-1M, with 10x the interactions of ML-100K, gets a shorter budget still.
BUDGET = {
    'ml-100k': dict(batch_size=8192, epochs=80, eval_every=5, patience=3),
    'facebook-books': dict(batch_size=2048, epochs=100, eval_every=5,
                           patience=3),
    'ml-1m': dict(batch_size=32768, epochs=40, eval_every=5, patience=2),
}
COMMON = dict(lr=1e-2, lambda_reg=1e-4, monitor='ndcg@10', select='valid',
              ks=(10, 20))
MODELS = {
    'lightgcn': ('lightgcn', {'embedding_dim': 64, 'num_layers': 3}),
    'sheaf-s1': ('sheaf4rec', {'embedding_dim': 64, 'num_layers': 10,
                               'stalk_dim': 1, 'readout': 'mean'}),
    'sheaf-s1-cat': ('sheaf4rec', {'embedding_dim': 64, 'num_layers': 10,
                                   'stalk_dim': 1, 'readout': 'cat'}),
    'sheaf-s4-diag': ('sheaf4rec', {'embedding_dim': 64, 'num_layers': 10,
                                    'stalk_dim': 4, 'support': 'diag',
                                    'readout': 'mean'}),
    'sheaf-s4-general': ('sheaf4rec', {'embedding_dim': 64, 'num_layers': 10,
                                       'stalk_dim': 4, 'support': 'general',
                                       'readout': 'mean'}),
}
KEYS = ('f1@10', 'ndcg@10', 'recall@20', 'ndcg@20')


def stat(values):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), sd


def run_one(dataset, root, name, kwargs, budget, seed, label):
    graph = load_dataset(dataset, root=root, seed=seed)
    torch.manual_seed(seed)
    model = build_model(name, graph, **kwargs)
    config = TrainConfig(**budget, seed=seed)
    report = Trainer(model, graph, config, progress=False).fit()
    epoch_s = report['train_seconds'] / max(report['epochs_run'], 1)
    t = report['test']
    print(f'  {label:<16} seed {seed}: ' +
          ' '.join(f'{k} {t[k]:.4f}' for k in KEYS) +
          f"  best epoch {report['epoch']}/{report['epochs_run']}"
          f'  {epoch_s:.2f} s/epoch', flush=True)
    return {'seed': seed, 'epoch': report['epoch'],
            'epochs_run': report['epochs_run'],
            'train_seconds': report['train_seconds'],
            'epoch_seconds': epoch_s,
            'test': {k: t[k] for k in KEYS}}


def summarise(row):
    runs = row['runs']
    row['mean'] = {k: stat([r['test'][k] for r in runs]) for k in KEYS}
    row['epoch_seconds'] = stat([r['epoch_seconds'] for r in runs])
    return row


def merge(paths):
    """Joins the runs of several result files of one data set and budget
    (runs split across processes), one row per model, seeds in order."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    first = parts[0]
    for part in parts[1:]:
        for key in ('dataset', 'budget'):
            if part[key] != first[key]:
                raise ValueError(f"cannot merge '{paths[0]}' and a file "
                                 f"with a different {key}: {part[key]!r}")
    rows = {}
    for part in parts:
        for label, row in part['models'].items():
            into = rows.setdefault(label, {'model': row['model'],
                                           'kwargs': row['kwargs'],
                                           'runs': []})
            seen = {r['seed'] for r in into['runs']}
            dup = seen & {r['seed'] for r in row['runs']}
            if dup:
                raise ValueError(f"seed {sorted(dup)} of '{label}' appears "
                                 'in more than one file')
            into['runs'] += row['runs']
    for row in rows.values():
        row['runs'].sort(key=lambda r: r['seed'])
        summarise(row)
    seeds = sorted({r['seed'] for row in rows.values() for r in row['runs']})
    threads = sorted({part['threads'] for part in parts})
    meta = {'dataset': first['dataset'], 'seeds': seeds,
            'threads': threads[0] if len(threads) == 1 else threads,
            'budget': first['budget'], 'merged_from': [
                osp.basename(path) for path in paths]}
    return rows, meta


def report(rows, meta, tag):
    print(f"\n{'model':<16} " + ' '.join(f'{k:>17}' for k in KEYS) +
          f" {'s/epoch':>8} {'vs LightGCN F1@10':>18}")
    base = rows.get('lightgcn', {}).get('mean', {}).get('f1@10', (None,))[0]
    for label, row in rows.items():
        cells = ' '.join(f'{m:.4f} ± {s:.4f}'.rjust(17)
                         for m, s in (row['mean'][k] for k in KEYS))
        rel = ''
        if base:
            rel = f"{100 * (row['mean']['f1@10'][0] / base - 1):+.1f}%"
        print(f"{label:<16} {cells} {row['epoch_seconds'][0]:>8.2f} "
              f'{rel:>18}')
    name = f"sheaf_{meta['dataset']}{tag}.json"
    out = osp.join(osp.dirname(osp.abspath(__file__)), 'results', name)
    with open(out, 'w') as f:
        json.dump({**meta, 'version': __version__,
                   'protocol': 'package evaluator: full ranking, training '
                               'items excluded, mean over test users; model '
                               'chosen by validation NDCG@10',
                   'models': rows}, f, indent=1)
    print(f'wrote {out}')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', default='ml-100k', choices=sorted(BUDGET))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--models', nargs='+',
                   default=['lightgcn', 'sheaf-s1', 'sheaf-s4-diag'],
                   choices=list(MODELS),
                   help='sheaf-s4-general is left out by default: its steps '
                   'take about 4x those of sheaf-s4-diag')
    p.add_argument('--epochs', type=int, default=None,
                   help='override the maximum epochs')
    p.add_argument('--lr', type=float, default=None,
                   help='override the learning rate of every model')
    p.add_argument('--lambda-reg', type=float, default=None,
                   help='override the L2 weight of every model')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--tag', default='', help='suffix of the output file')
    p.add_argument('--merge', nargs='+', metavar='JSON',
                   help='train nothing: join the runs of result files '
                   'written by earlier calls (seeds or models split across '
                   'processes) and write sheaf_<dataset><tag>.json')
    args = p.parse_args()
    if args.merge:
        report(*merge(args.merge), args.tag)
        return
    torch.set_num_threads(args.threads)
    root = require_dataset(args.dataset)
    budget = {**BUDGET[args.dataset], **COMMON}
    for key in ('epochs', 'lr', 'lambda_reg'):
        if getattr(args, key) is not None:
            budget[key] = getattr(args, key)
    print(f'{args.dataset}: seeds {args.seeds}, {args.threads} threads, '
          f'budget {budget}, {load_note()}', flush=True)
    rows = {}
    for label in args.models:
        name, kwargs = MODELS[label]
        runs = [run_one(args.dataset, root, name, kwargs, budget, seed, label)
                for seed in args.seeds]
        rows[label] = summarise({'model': name, 'kwargs': kwargs,
                                 'runs': runs})
    report(rows, {'dataset': args.dataset, 'seeds': args.seeds,
                  'threads': args.threads, 'budget': budget}, args.tag)


if __name__ == '__main__':
    main()
