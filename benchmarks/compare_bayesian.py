"""LightGCN against Bayesian LightGCN on node-copying (BGCF) and PECO graphs.

    python benchmarks/compare_bayesian.py
    python benchmarks/compare_bayesian.py --datasets lastfm --seeds 0 --epochs 1

For every data set (fixed published splits, read from ``../shared/data`` or
``$PYG_RECSYS_DATA``; a missing one is skipped) and seed, trains

* ``lightgcn``: LightGCN on the observed graph;
* ``node_copy``: the same LightGCN in a ``BayesianRecommender`` on graphs of
  BGCF's node copying (``pyg_recsys.data.NodeCopying``);
* ``peco``: likewise on PECO graphs (``pyg_recsys.data.PECO``);

with the same settings (a new sampled graph every epoch, scores averaged over
``--num-samples`` sampled graphs at the end) for a fixed number of epochs,
and reports the final epoch's test Recall@20 / NDCG@20 as mean ± sd over the
seeds. The generators do not depend on the seed (the splits are fixed), so
each is fitted once per data set and its fitting time is reported apart.
Writes ``<out>/bayesian_<dataset>.json``.

The default budgets keep the whole comparison (3 data sets x 3 seeds x 3
models) within about 40 minutes on 2 threads; see ``BUDGET``. Measured on
this VM (2 threads, idle): one training epoch of LightGCN takes 0.11 s on
lastfm (batch 2048), 3.9 s on ml-1m (batch 8192) and 2.2 s on
sslrec-sparse-yelp (batch 4096); the Bayesian models add a sampled graph per
epoch (0.01-0.2 s) and 4 propagations per evaluation; fitting the two
generators takes 0.4 s, 5 s and 3 s.
"""
import argparse
import json
import os
import os.path as osp
import statistics

import torch
from _common import (data_root, fit_timed, load_note, mean_sd,
                     train_report)

from pyg_recsys import __version__
from pyg_recsys.data import PECO, NodeCopying, load_dataset
from pyg_recsys.nn import BayesianRecommender, LightGCN
from pyg_recsys.train import TrainConfig

DATASETS = ('lastfm', 'ml-1m', 'sslrec-sparse-yelp')
MODELS = ('lightgcn', 'node_copy', 'peco')
# Per data set: epochs, batch size and learning rate of every model (Adam,
# L2 1e-4 in the LightGCN scaling, d = 64, 3 layers, final epoch reported).
# About 3, 13 and 13 minutes for the 9 runs of each data set.
BUDGET = {
    'lastfm': dict(epochs=150, batch_size=2048, lr=5e-3),
    'ml-1m': dict(epochs=20, batch_size=8192, lr=5e-3),
    'sslrec-sparse-yelp': dict(epochs=35, batch_size=4096, lr=5e-3),
}


def fit_generators(graph, args):
    factories = {
        'node_copy': lambda: NodeCopying(graph,
                                         replace_prob=args.replace_prob),
        'peco': lambda: PECO(graph, replace_prob=args.replace_prob,
                             alpha=args.alpha, beta=args.beta)}
    return fit_timed((name, f) for name, f in factories.items()
                     if name in args.models)


def run(graph, model_name, generators, seed, budget, args):
    torch.manual_seed(seed)
    base = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                    embedding_dim=64,
                    num_layers=3)
    steps = -(-graph.train.size(1) // budget['batch_size'])
    model = base if model_name == 'lightgcn' else BayesianRecommender(
        base, generators[model_name], num_samples=args.num_samples,
        resample_every=steps, seed=seed)
    config = TrainConfig(epochs=budget['epochs'],
                         batch_size=budget['batch_size'], lr=budget['lr'],
                         lambda_reg=1e-4, eval_every=budget['epochs'],
                         patience=0, select='last', monitor='ndcg@20',
                         ks=(10, 20), seed=seed)
    return train_report(model, graph, config, seed)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', nargs='+', default=list(DATASETS))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=None,
                   help='epochs of every run (default: BUDGET per data set)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(
        __file__)), 'results'), help='folder of the JSON files')
    p.add_argument('--models', nargs='+', default=list(MODELS),
                   choices=MODELS)
    p.add_argument('--num-samples', type=int, default=4,
                   help='sampled graphs averaged at inference')
    p.add_argument('--replace-prob', type=float, default=0.1,
                   help="probability that a user's items are replaced (1 - "
                        "BGCF's epsilon)")
    p.add_argument('--alpha', type=float, default=0.5,
                   help='PECO: weight of item concurrence')
    p.add_argument('--beta', type=float, default=0.5,
                   help='PECO: item-degree exponent')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = data_root()
    print(f'seeds {args.seeds}, {args.threads} threads, {load_note()}')
    for name in args.datasets:
        if not osp.isdir(osp.join(root, name)):
            print(f'skipped: {name} not found under {root} (set '
                  f'PYG_RECSYS_DATA)')
            continue
        budget = dict(BUDGET.get(name, BUDGET['lastfm']))
        if args.epochs is not None:
            budget['epochs'] = args.epochs
        graph = load_dataset(name, root=root)
        print(f'{graph}: {budget}', flush=True)
        generators, fit_seconds = fit_generators(graph, args)
        rows = {}
        for model_name in args.models:
            runs = []
            for seed in args.seeds:
                r = run(graph, model_name, generators, seed, budget, args)
                runs.append(r)
                t = r['test']
                print(f"  {model_name:<9} seed {seed}: R@20 "
                      f"{t['recall@20']:.4f} N@20 {t['ndcg@20']:.4f}  "
                      f"{r['train_seconds']:.1f} s training, "
                      f"{r['wall_seconds']:.1f} s in all", flush=True)
            rows[model_name] = {'runs': runs, 'mean': {
                k: mean_sd(runs, k)[0] for k in ('recall@20', 'ndcg@20',
                                              'recall@10', 'ndcg@10')}}
        print(f"\n{name}: {'model':<9} {'R@20':>17} {'N@20':>17} "
              f"{'train s':>8}")
        for model_name, row in rows.items():
            cells = [mean_sd(row['runs'], k) for k in ('recall@20', 'ndcg@20')]
            secs = statistics.mean(r['train_seconds'] for r in row['runs'])
            row['mean']['train_seconds'] = secs
            print(f"{'':<{len(name) + 1}} {model_name:<9} "
                  + ' '.join(f'{m:.4f} ± {s:.4f}'.rjust(17)
                             for m, s in cells) + f' {secs:>8.1f}')
        os.makedirs(args.out, exist_ok=True)
        path = osp.join(args.out, f'bayesian_{name}.json')
        with open(path, 'w') as f:
            json.dump({'dataset': name, 'version': __version__,
                       'seeds': args.seeds, 'threads': args.threads,
                       'budget': budget, 'num_samples': args.num_samples,
                       'generators': {k: repr(v) for k, v in
                                      generators.items()},
                       'generator_fit_seconds': fit_seconds,
                       'selection': 'final epoch', 'models': rows}, f,
                      indent=1)
        print(f'wrote {path}\n', flush=True)


if __name__ == '__main__':
    main()
