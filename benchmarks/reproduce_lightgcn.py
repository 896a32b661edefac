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
import sys

from _reproduce import reproduce

TARGETS = {'gowalla': (0.1824, 0.1547), 'yelp2018': (0.0635, 0.0524)}
PROTOCOL = ('LightGCN split (train.txt/test.txt), full ranking over all items '
            'minus the user\'s training items, metrics averaged over test users')

if __name__ == '__main__':
    # sslrec-sparse-yelp: the baseline of reproduce_dccf.py (--recipe default).
    sys.exit(reproduce('lightgcn', list(TARGETS) + ['sslrec-sparse-yelp'],
                       TARGETS, 'paper', PROTOCOL))
