"""SimpleX and UltraGCN on the BARS splits of Gowalla, Yelp2018 and ML-1M,
against the numbers the open-benchmark leaders publish there (issue 26).

    python benchmarks/reproduce_leaders.py --model simplex --dataset gowalla [--recipe official --epochs 20]
    python benchmarks/reproduce_leaders.py --model ultragcn --dataset gowalla [--epochs 100]

Trains a recipe of the model (``pyg-recsys train simplex --dataset gowalla
--recipe official`` runs the same model and loss), evaluates the test split
every ``eval_every`` epochs and writes ``benchmarks/results/<model>_<dataset>
.json`` and its PNG, as ``reproduce_lightgcn.py`` does: the final epoch (no
selection) and the best epoch on test (the rule of both models' code, which
evaluates the test split), labelled. The other options are
``reproduce_lightgcn.py``'s.
"""
import argparse
import sys

from _reproduce import reproduce

# The best of UltraGCN and SimpleX per metric, from their READMEs in
# reczoo/RecZoo (matching/): R@20, N@20.
TARGETS = {'gowalla': (0.1872, 0.1580), 'yelp2018': (0.0701, 0.0575),
           'ml-1m': (0.2802, 0.2670)}
PROTOCOL = ('BARS split (train.txt/test.txt), full ranking over all items '
            'minus the user\'s training items, metrics averaged over test '
            'users')
DEFAULT_RECIPE = {'simplex': 'official', 'ultragcn': 'default'}

if __name__ == '__main__':
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument('--model', choices=sorted(DEFAULT_RECIPE),
                   default='simplex')
    known, rest = p.parse_known_args()
    sys.exit(reproduce(known.model, list(TARGETS), TARGETS,
                       DEFAULT_RECIPE[known.model], PROTOCOL, rest,
                       drop_valid=True))
