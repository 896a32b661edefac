r"""GTE (learning-less, k = 3) on the GTE paper's HKUDS splits.

For every data set of :obj:`gte-amazon-beauty`, :obj:`gte-tmall` and
:obj:`gte-sparse-tmall` found under the data folder, a fresh Python process
loads the split (:func:`pyg_recsys.data.load_dataset`), builds
:class:`pyg_recsys.nn.GTE`, ranks all items for every test user with
:class:`pyg_recsys.metrics.Evaluator` (training items excluded, ties by
item id, 256-user batches) and reports Recall@20 / NDCG@20

* in the official protocol of :obj:`HKUDS/GTE` :obj:`main.py` (mean of the
  256-user-id batch means,
  :func:`pyg_recsys.metrics.gte_protocol.gte_protocol_metrics`), next to
  the paper code's numbers, and
* averaged per user (the package's default),

with the wall time of the whole process (interpreter start, imports, data
loading, scoring, ranking, metrics), the time from data loading to metrics,
and the peak resident memory (:obj:`resource.getrusage` maxrss of that
process). The official numbers come from a non-stable sort of scores with
many ties, so they are matched within :obj:`TOLERANCE`.

Usage::

    python benchmarks/bench_gte.py [--threads 1] [--k 3] [--numpy-check]
                                   [datasets ...]
    python benchmarks/bench_gte.py gowalla yelp2018

On data sets with a LightGCN run of :obj:`reproduce_lightgcn.py` in
:obj:`benchmarks/results/`, its final-epoch numbers are printed beside GTE's
(same split, same per-user evaluator).

With :obj:`--numpy-check`, each data set is also ranked as the official
code ranks (NumPy's non-stable :obj:`argsort` of :obj:`float32` scores with
training items at score 0; untimed), which reproduces the official numbers
and shows that the remaining gap is the tie order only.

The data folder is :obj:`$PYG_RECSYS_DATA`, else :obj:`../shared/data`
beside the repository; missing data sets are skipped with a message.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from _common import data_root, load_note

# name -> (official Recall@20, NDCG@20) of HKUDS/GTE main.py, k = 3.
TARGETS = {
    'gte-amazon-beauty': (0.0971, 0.0438),
    'gte-tmall': (0.0594, 0.0300),
    'gte-sparse-tmall': (0.0580, 0.0366),
}
TOLERANCE = 0.0015
TIME_TARGET_S = {'gte-amazon-beauty': 10.0}


def lightgcn_reference(name: str):
    r"""This package's LightGCN result on :obj:`name` from
    :obj:`benchmarks/results/lightgcn_<name>*.json` (the clean run when
    present, else the best completed run), as (file, Recall@20, NDCG@20);
    :obj:`None` when there is none."""
    import glob
    folder = osp.join(osp.dirname(osp.abspath(__file__)), 'results')
    found = []
    for path in sorted(glob.glob(osp.join(folder, f'lightgcn_{name}*.json'))):
        with open(path) as f:
            final = json.load(f).get('final')
        if final:
            clean = osp.basename(path) == f'lightgcn_{name}.json'
            found.append((clean, final['recall@20'], osp.basename(path),
                          final['ndcg@20']))
    if not found:
        return None
    _, recall, path, ndcg = max(found)
    return path, recall, ndcg


def numpy_ranking(graph, evaluator, model) -> dict:
    r"""The ranking of the official code, for a cross-check of the tie
    order: :obj:`float32` scores, training items set to 0 (not excluded),
    NumPy's default (non-stable) :obj:`argsort`, 256 users at a time."""
    import numpy as np
    import torch

    from pyg_recsys.metrics import Evaluator
    from pyg_recsys.metrics.gte_protocol import gte_protocol_metrics
    rowptr, col = graph.csr('train')
    no_mask = Evaluator(graph, split='test', ks=(20, ),
                        metrics=('recall', 'ndcg'), exclude=())
    users = no_mask.users
    parts = []
    for start in range(0, users.numel(), 256):
        batch = users[start:start + 256]
        scores = model.scores(batch).to(torch.float32)
        count = rowptr[batch + 1] - rowptr[batch]
        row = torch.repeat_interleave(torch.arange(batch.numel()), count)
        item = torch.cat([col[rowptr[u]:rowptr[u + 1]]
                          for u in batch.tolist()])
        scores[row, item] = 0
        order = (-scores.numpy()).argsort(axis=1)[:, :20]
        parts.append(torch.from_numpy(order.astype(np.int64)))
    index = torch.cat(parts)
    per_user = no_mask.metrics_of(index)
    official = gte_protocol_metrics(no_mask, index)
    return {'np_official': [official['recall@20'], official['ndcg@20']],
            'np_per_user': [per_user['recall@20'], per_user['ndcg@20']]}


def run_one(name: str, root: str, k: int, numpy_check: bool) -> dict:
    r"""Runs in the child process: everything after the imports is timed."""
    import resource

    import torch

    from pyg_recsys.data import load_dataset
    from pyg_recsys.metrics import Evaluator
    from pyg_recsys.metrics.gte_protocol import gte_protocol_metrics
    from pyg_recsys.nn import GTE

    start = time.perf_counter()
    graph = load_dataset(name, root=root)
    loaded = time.perf_counter()
    model = GTE.from_graph(graph, k=k)
    evaluator = Evaluator(graph, split='test', ks=(20, ),
                          metrics=('recall', 'ndcg'), batch_size=256)
    index = evaluator.rank_scores(model.scores)
    ranked = time.perf_counter()
    per_user = evaluator.metrics_of(index)
    official = gte_protocol_metrics(evaluator, index)
    end = time.perf_counter()
    row = {
        'name': name, 'users': graph.num_users, 'items': graph.num_items,
        'train': graph.train.size(1), 'test_users': evaluator.num_eval_users,
        'official': [official['recall@20'], official['ndcg@20']],
        'per_user': [per_user['recall@20'], per_user['ndcg@20']],
        'load_s': loaded - start, 'rank_s': ranked - loaded,
        'compute_s': end - start,
        'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss /
        1024, 'threads': torch.get_num_threads(),
    }
    if numpy_check:  # after the measurement: not timed
        row.update(numpy_ranking(graph, evaluator, model))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('datasets', nargs='*', default=list(TARGETS))
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--k', type=int, default=3)
    parser.add_argument('--numpy-check', action='store_true',
                        help="also rank as the official code does (NumPy's "
                        'non-stable argsort, training items at score 0), '
                        'untimed, to separate tie order from the protocol')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = data_root()
    if args.child:
        import torch
        torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args.child, root, args.k,
                                 args.numpy_check)))
        return

    rows = []
    for name in args.datasets:
        if not osp.isdir(osp.join(root, name)):
            print(f'skipped: {name} not found under {root} '
                  f'(set PYG_RECSYS_DATA)')
            continue
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, osp.abspath(__file__), '--child', name,
             '--threads', str(args.threads), '--k', str(args.k)] +
            (['--numpy-check'] if args.numpy_check else []),
            capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(f'{name}: failed\n{proc.stderr}')
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row['wall_s'] = wall
        rows.append(row)

    if not rows:
        return
    print(f'GTE k={args.k}, {args.threads} thread(s), {load_note()}')
    head = (f"{'dataset':<18} {'users':>6} {'items':>6} | "
            f"{'official R@20':>13} {'N@20':>7} {'target':>15} {'ok':>3} | "
            f"{'per-user R@20':>13} {'N@20':>7} | {'wall s':>6} "
            f"{'compute s':>9} {'peak MB':>7}")
    print(head)
    print('-' * len(head))
    for r in rows:
        target = TARGETS.get(r['name'])
        ok = '' if target is None or args.k != 3 else (
            'yes' if all(abs(a - b) <= TOLERANCE
                         for a, b in zip(r['official'], target)) else 'NO')
        tgt = '' if target is None else f'{target[0]:.4f}/{target[1]:.4f}'
        print(f"{r['name']:<18} {r['users']:>6} {r['items']:>6} | "
              f"{r['official'][0]:>13.4f} {r['official'][1]:>7.4f} "
              f"{tgt:>15} {ok:>3} | {r['per_user'][0]:>13.4f} "
              f"{r['per_user'][1]:>7.4f} | {r['wall_s']:>6.2f} "
              f"{r['compute_s']:>9.2f} {r['maxrss_mb']:>7.0f}")
        if 'np_official' in r:
            ok = '' if target is None or args.k != 3 else (
                'yes' if all(abs(a - b) <= TOLERANCE for a, b in
                             zip(r['np_official'], target)) else 'NO')
            print(f"{'  numpy argsort':<32} | "
                  f"{r['np_official'][0]:>13.4f} {r['np_official'][1]:>7.4f} "
                  f"{tgt:>15} {ok:>3} | {r['np_per_user'][0]:>13.4f} "
                  f"{r['np_per_user'][1]:>7.4f} |")
        ref = lightgcn_reference(r['name'])
        if ref is not None:
            print(f"  LightGCN of this package ({ref[0]}, final epoch): "
                  f"per-user R@20 {ref[1]:.4f} N@20 {ref[2]:.4f}; GTE/LightGCN "
                  f"{r['per_user'][0] / ref[1]:.2f} / "
                  f"{r['per_user'][1] / ref[2]:.2f}")
        limit = TIME_TARGET_S.get(r['name'])
        if limit is not None and r['wall_s'] > limit:
            print(f"  note: {r['name']} took {r['wall_s']:.1f} s end to end "
                  f"(target {limit:.0f} s)")


if __name__ == '__main__':
    main()
