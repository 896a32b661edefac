"""DCCF against this package's LightGCN, same pipeline and evaluator.

    python benchmarks/reproduce_dccf.py --dataset gowalla|yelp2018|sslrec-sparse-yelp

Trains DCCF with the package's ``default`` recipe (the DCCF paper's settings:
d = 32, 2 layers, 128 intents, Adam 1e-3, batch 10240, the official loss
weights), evaluates the test split every ``eval_every`` epochs with the
package's full-ranking evaluator, and writes
``benchmarks/results/dccf_<dataset>.json`` and the PNG beside it, in the
format of ``reproduce_lightgcn.py``. The comparison target is the final epoch
of this package's LightGCN on the same split, read from
``benchmarks/results/lightgcn_<dataset>.json`` (run ``reproduce_lightgcn.py``
first; ``--recipe default`` there for ``sslrec-sparse-yelp``); the script
exits non-zero when DCCF's final epoch does not beat it on both metrics.
"""
import json
import os.path as osp
import sys

from _common import REPO
from _reproduce import reproduce

DATASETS = ('gowalla', 'yelp2018', 'sslrec-sparse-yelp')
PROTOCOL = ('train / test of the data set\'s files, full ranking over all '
            'items minus the user\'s training items, metrics averaged over '
            'test users; target = this package\'s LightGCN (final epoch)')


def lightgcn_targets():
    out = {}
    for name in DATASETS:
        path = osp.join(REPO, 'benchmarks', 'results', f'lightgcn_{name}.json')
        if osp.exists(path):
            with open(path) as f:
                final = json.load(f).get('final')
            if final:
                out[name] = (final['recall@20'], final['ndcg@20'])
    return out


if __name__ == '__main__':
    sys.exit(reproduce('dccf', DATASETS, lightgcn_targets(), 'default',
                       PROTOCOL))
