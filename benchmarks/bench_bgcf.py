"""BGCF's training step on Amazon-CDs at the official settings, per
occurrence (as BGCF's code draws neighbours) and with neighbours shared by
the repeats of a node in a batch (``share_neighbors=True``, a deviation),
side by side with this package's LightGCN step, and the official schedule
they imply.

    python benchmarks/bench_bgcf.py [--threads 2] [--steps 3]

Official settings (MindSpore model zoo ``research/gnn/bgcf``): d 64, 40
observed and 20 sampled neighbours per node, dropout (0, 0.2, 0.3), batch
5,000 positives with 10 negatives each, 600 epochs (680 in its GPU script) of
every training pair once. A step: loss, backward, Adam; median of the timed
steps after one warm-up. The inference cost (50 passes over all nodes) is
timed as one pass.
"""
import argparse
import time

import torch
from _common import load_note, require_dataset

from pyg_recsys.data import BPRSampler, load_dataset
from pyg_recsys.nn.models import build_model


def median_step(step, batches):
    times = []
    for k, batch in enumerate(batches):
        start = time.perf_counter()
        step(*batch)
        if k:  # the first warms up
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_dataset('amazon-cds', root=require_dataset('amazon-cds'))
    print(f'{graph}; {args.threads} threads; {load_note()}', flush=True)
    U, n_train = graph.num_users, graph.train.size(1)
    rows = []

    torch.manual_seed(0)
    lgn = build_model('lightgcn', graph, embedding_dim=64, num_layers=3)
    adj = graph.norm_adj()
    opt = torch.optim.Adam(lgn.parameters(), lr=1e-3)
    sampler = BPRSampler(graph, 'per_user', 1, seed=0)

    def lgn_step(u, i, j):
        opt.zero_grad(set_to_none=True)
        loss, _ = lgn.training_loss(adj, u, i + U, j + U, 1e-4, 'lightgcn')
        loss.backward()
        opt.step()

    batches = [sampler.sample(2048) for _ in range(args.steps + 1)]
    rows.append(('LightGCN (d 64, 3 layers)', 2048,
                 median_step(lgn_step, batches), -(-n_train // 2048)))

    sampler = BPRSampler(graph, 'per_interaction', 10, seed=0)
    batches = [sampler.sample(5000) for _ in range(args.steps + 1)]
    steps = n_train // 5000
    start = time.perf_counter()
    for share in (False, True):
        torch.manual_seed(0)
        model = build_model('bgcf', graph, share_neighbors=share,
                            num_eval_passes=1)
        if not share:
            print(f'generator and 5 graphs: '
                  f'{time.perf_counter() - start:.1f} s', flush=True)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def bgcf_step(u, i, j):
            opt.zero_grad(set_to_none=True)
            loss, _ = model.training_loss(None, u, i + U, j + U, 0.03,
                                          'bgcf')
            loss.backward()
            opt.step()

        t = median_step(bgcf_step, batches)
        rows.append((f"BGCF ({'shared' if share else 'per occurrence'})",
                     5000, t, steps))
    model.eval()
    start = time.perf_counter()
    model.get_embedding()
    one_pass = time.perf_counter() - start

    print(f"\n{'path':<30} {'batch':>6} {'s / step':>9} {'steps':>6} "
          f"{'s / epoch':>10} {'600 epochs (h)':>15}")
    for name, bs, t, n in rows:
        print(f'{name:<30} {bs:>6} {t:>9.3f} {n:>6} {t * n:>10.1f} '
              f'{t * n * 600 / 3600:>15.1f}')
    print(f'\nBGCF inference: {one_pass:.2f} s a pass, {50 * one_pass:.0f} s '
          f'for the 50 passes of an evaluation')


if __name__ == '__main__':
    main()
