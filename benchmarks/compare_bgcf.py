"""BGCF with BGCF's node copying against BGCF with PECO graphs, beside
LightGCN, on the same splits and seeds (issue 25).

    python benchmarks/compare_bgcf.py --datasets lastfm --epochs 60
    python benchmarks/compare_bgcf.py --datasets lastfm --seeds 0 --epochs 1   # a smoke run

For every data set (fixed published splits from ``../shared/data`` or
``$PYG_RECSYS_DATA``; a missing one is skipped) and seed, trains

* ``bgcf``: :class:`pyg_recsys.nn.models.BGCF` on graphs of BGCF's node
  copying (``NodeCopying``: epsilon 0.01 = the probability of *keeping* a
  user's items, candidates the top min(d_u, 10) Jaccard users);
* ``bgcf-peco``: the same network on PECO graphs (``PECO``, its defaults;
  **a reconstruction**: PECO's equations could not be read in full);
* ``lightgcn``: this package's LightGCN (d 64, 3 layers, Adam 5e-3, L2 1e-4,
  batch 2048), the Bayesian section's baseline;

BGCF with its official settings (the ``bgcf`` recipe: d 64, 40 observed +
20 sampled neighbours, dropout (0, 0.2, 0.3), batch 5,000 positives x 10
negatives, summed BPR, L2 0.03 on the representations, Adam 1e-3, 5 graphs
cycled one per epoch, z averaged over 50 inference passes) except the
number of epochs (``--epochs``; BGCF trains 600) and, with
``--share-neighbors``, neighbours drawn once per distinct node of a batch (a
labelled deviation). Both generators are fitted once per data set (they do
not depend on the seed). The final epoch's test Recall@20 / NDCG@20 is
reported as mean +- sd over the seeds. Writes ``<out>/bgcf_<dataset>.json``.
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
from pyg_recsys.nn import LightGCN
from pyg_recsys.nn.models.bgcf import BGCF
from pyg_recsys.train import TrainConfig, get_recipe

DATASETS = ('lastfm', 'sslrec-sparse-yelp')
MODELS = ('bgcf', 'bgcf-peco', 'lightgcn')
GENERATORS = {'bgcf': NodeCopying, 'bgcf-peco': PECO}
LIGHTGCN = dict(batch_size=2048, lr=5e-3, lambda_reg=1e-4)
LIGHTGCN_EPOCHS = {'lastfm': 150, 'sslrec-sparse-yelp': 35}


def run(graph, name, generators, seed, epochs, args):
    torch.manual_seed(seed)
    if name == 'lightgcn':
        model = LightGCN(num_users=graph.num_users,
                         num_items=graph.num_items, embedding_dim=64,
                         num_layers=3)
        train = dict(LIGHTGCN, epochs=LIGHTGCN_EPOCHS.get(graph.name, 150))
    else:
        recipe = get_recipe('bgcf', graph.name, 'default')
        train = dict(recipe.train, epochs=epochs)
        steps = -(-graph.train.size(1) // train['batch_size'])
        model = BGCF(graph.num_users, graph.num_items, generators[name],
                     steps_per_graph=steps, seed=seed,
                     share_neighbors=args.share_neighbors,
                     **recipe.model_kwargs)
    train.update(eval_every=train['epochs'], patience=0, select='last',
                 monitor='ndcg@20', ks=(10, 20), seed=seed)
    return train_report(model, graph, TrainConfig(**train), seed)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--datasets', nargs='+', default=['lastfm'],
                   choices=DATASETS)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, required=True,
                   help='epochs of the BGCF runs (BGCF: 600)')
    p.add_argument('--models', nargs='+', default=list(MODELS),
                   choices=MODELS)
    p.add_argument('--share-neighbors', action='store_true',
                   help='one neighbour draw per distinct node of a batch '
                        '(a deviation, for speed)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--tag', default='', help='suffix of the output file')
    p.add_argument('--out', default=osp.join(osp.dirname(osp.abspath(
        __file__)), 'results'), help='folder of the JSON files')
    args = p.parse_args()
    if args.epochs < 1:
        p.error(f'--epochs must be positive, got {args.epochs}')
    torch.set_num_threads(args.threads)
    root = data_root()
    print(f'seeds {args.seeds}, {args.threads} threads, {load_note()}')
    for name in args.datasets:
        if not osp.isdir(osp.join(root, name)):
            print(f'skipped: {name} not found under {root} (set '
                  f'PYG_RECSYS_DATA)')
            continue
        graph = load_dataset(name, root=root)
        print(graph, flush=True)
        generators, fit_seconds = fit_timed(
            (name, lambda cls=cls: cls(graph))
            for name, cls in GENERATORS.items() if name in args.models)
        rows = {}
        for model_name in args.models:
            runs = []
            for seed in args.seeds:
                r = run(graph, model_name, generators, seed, args.epochs,
                        args)
                runs.append(r)
                t = r['test']
                print(f"  {model_name:<9} seed {seed}: R@20 "
                      f"{t['recall@20']:.4f} N@20 {t['ndcg@20']:.4f}  "
                      f"{r['epochs_run']} epochs, {r['train_seconds']:.1f} s "
                      f"training, {r['wall_seconds']:.1f} s in all",
                      flush=True)
            rows[model_name] = {'runs': runs, 'mean': {
                k: mean_sd(runs, k)[0] for k in ('recall@20', 'ndcg@20',
                                              'recall@10', 'ndcg@10')}}
            rows[model_name]['mean']['train_seconds'] = statistics.mean(
                r['train_seconds'] for r in runs)
        print(f"\n{name}: {'model':<9} {'R@20':>17} {'N@20':>17} "
              f"{'train s':>8}")
        for model_name, row in rows.items():
            cells = [mean_sd(row['runs'], k) for k in ('recall@20', 'ndcg@20')]
            print(f"{'':<{len(name) + 1}} {model_name:<9} "
                  + ' '.join(f'{m:.4f} ± {s:.4f}'.rjust(17)
                             for m, s in cells)
                  + f" {row['mean']['train_seconds']:>8.1f}")
        os.makedirs(args.out, exist_ok=True)
        path = osp.join(args.out, f'bgcf_{name}{args.tag}.json')
        with open(path, 'w') as f:
            json.dump({'dataset': name, 'version': __version__,
                       'seeds': args.seeds, 'threads': args.threads,
                       'bgcf_epochs': args.epochs,
                       'share_neighbors': args.share_neighbors,
                       'lightgcn': dict(LIGHTGCN, epochs=LIGHTGCN_EPOCHS.get(
                           name, 150)),
                       'generators': {k: repr(v) for k, v in
                                      generators.items()},
                       'generator_fit_seconds': fit_seconds,
                       'selection': 'final epoch', 'models': rows}, f,
                      indent=1)
        print(f'wrote {path}\n', flush=True)


if __name__ == '__main__':
    main()
