"""Cost of one LightGCN training step by phase and batch size.

    python benchmarks/profile_step.py --dataset yelp2018
    python benchmarks/profile_step.py --dataset gowalla --batch-sizes 16384 --profile

Times ``training_loss`` (propagation, batch gathers, BPR and L2),
``backward`` and the Adam step of the ``paper`` recipe's model (d = 64, 3
layers, bf16 storage) at each batch size, all in one run (median of
``--repeat`` steps after a warm-up), and the propagation alone (forward +
backward of the fused op), which every step pays whatever its batch. The
seconds an epoch follow from the steps an epoch (sampling and evaluation not
included). With ``--profile``, the torch profiler's table of the largest
operators over three steps at the largest batch size.
"""
import argparse
import statistics
import time

import torch
from _common import load_note, require_dataset

from pyg_recsys.data import load_dataset
from pyg_recsys.data.sampler import BPRSampler
from pyg_recsys.nn.models import LightGCN
from pyg_recsys.ops import light_propagate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='yelp2018')
    p.add_argument('--batch-sizes', type=int, nargs='+',
                   default=[16384, 32768, 65536])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeat', type=int, default=10)
    p.add_argument('--profile', action='store_true')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_dataset(args.dataset, root=require_dataset(args.dataset))
    adj = graph.norm_adj()
    model = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                     embedding_dim=64, num_layers=3,
                     storage_dtype=torch.bfloat16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    sampler = BPRSampler(graph)
    print(f'{graph}; {args.threads} threads; {load_note()}')

    def step(users, pos, neg):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model.training_loss(adj, users, pos + graph.num_users,
                                      neg + graph.num_users)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    print('| batch | loss (forward) ms | backward ms | Adam ms | step ms | '
          's an epoch |')
    print('| ---: | ---: | ---: | ---: | ---: | ---: |')
    for b in args.batch_sizes:
        batch = sampler.sample(b)
        for _ in range(3):
            step(*batch)
        runs = [step(*batch) for _ in range(args.repeat)]
        ms = [statistics.median(c) * 1e3 for c in zip(*runs)]
        steps = -(-len(sampler) // b)
        print(f'| {b} | {ms[0]:.1f} | {ms[1]:.1f} | {ms[2]:.1f} | '
              f'{sum(ms):.1f} | {sum(ms) * steps / 1e3:.2f} |', flush=True)

    x = model.embedding.weight.detach().requires_grad_()
    grad = torch.randn_like(x)

    def propagate():
        light_propagate(adj, x, 3, model.alpha.tolist(),
                        storage_dtype=torch.bfloat16).backward(grad)

    for _ in range(3):
        propagate()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        propagate()
        times.append(time.perf_counter() - start)
    print(f'propagation alone (forward + backward): '
          f'{statistics.median(times) * 1e3:.1f} ms; {load_note()}')

    if args.profile:
        from torch.profiler import profile
        batch = sampler.sample(max(args.batch_sizes))
        with profile() as prof:
            for _ in range(3):
                step(*batch)
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=15))


if __name__ == '__main__':
    main()
