"""Cost of one training step by phase for the embedding models, each at its
recipe's batch size and negatives, side by side in one run.

    python benchmarks/profile_models.py --dataset gowalla
    python benchmarks/profile_models.py --dataset gowalla --models mf simplex --profile

For each model (recipe: ``paper`` for LightGCN where the data set has one,
``official`` for SimpleX and UltraGCN where it has one, else ``default``) a
step is timed in four phases: drawing the batch (the negatives, plus the
step's share of drawing one epoch of positives, as the Trainer's sampler
does), the loss (``training_loss``: propagation, gathers,
scores), ``backward`` and the Adam step (the Trainer's, fused where PyTorch
has it; the last column times PyTorch's default Adam on the same parameters
and gradients); median of ``--repeat`` steps after a warm-up. The seconds of an epoch follow from the steps of an epoch (the
recipe's ``steps_per_epoch``, else one pass over the training pairs);
evaluation is not included. With ``--profile``, the torch profiler's largest
operators over three steps of each model.
"""
import argparse
import statistics
import time

import torch
from _common import load_note, require_dataset

from pyg_recsys.data import load_dataset
from pyg_recsys.data.sampler import BPRSampler
from pyg_recsys.train import TrainConfig, build_model, get_recipe
from pyg_recsys.train.config import make_adam


def recipe_for(model: str, dataset: str):
    for name in ('paper', 'official', 'default'):
        try:
            return name, get_recipe(model, dataset, name)
        except ValueError:
            continue
    raise SystemExit(f'no recipe for {model} on {dataset}')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='gowalla')
    p.add_argument('--models', nargs='+',
                   default=['mf', 'lightgcn', 'simplex', 'ultragcn'])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeat', type=int, default=10)
    p.add_argument('--profile', action='store_true')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_dataset(args.dataset, root=require_dataset(args.dataset))
    adj = graph.norm_adj()
    U = graph.num_users
    print(f'{graph}; {args.threads} threads; {load_note()}')
    print('| model (recipe) | batch | negatives | sample ms | loss ms | '
          'backward ms | Adam ms | step ms | steps | s an epoch | '
          'default Adam ms |')
    print('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | '
          '---: | ---: |')
    profiles = []
    for name in args.models:
        rname, recipe = recipe_for(name, args.dataset)
        cfg = TrainConfig(**recipe.train)
        torch.manual_seed(0)
        model = build_model(name, graph, **recipe.model_kwargs)
        optimizer = make_adam(model.parameters(), cfg.lr)  # the Trainer's
        sampler = BPRSampler(graph, cfg.sampler, cfg.num_negatives, seed=0,
                             shared_negatives=cfg.shared_negatives)
        hard = {'hard_negatives': True} \
            if cfg.negative_sampling == 'dns' else {}

        # One epoch of positives as the Trainer draws them (its cost spread
        # over the epoch's steps), the negatives batch by batch.
        t0 = time.perf_counter()
        all_users, all_pos = sampler.positives(
            cfg.steps_per_epoch * cfg.batch_size
            if cfg.steps_per_epoch else None)
        per_step = (time.perf_counter() - t0) / -(-all_users.numel() //
                                                  cfg.batch_size)
        cursor = [0]

        def step():
            t0 = time.perf_counter()
            start = cursor[0] % (all_users.numel() - cfg.batch_size + 1)
            cursor[0] += cfg.batch_size
            users = all_users[start:start + cfg.batch_size]
            pos = all_pos[start:start + cfg.batch_size]
            neg = sampler._negatives_of(users)
            t1 = time.perf_counter() + per_step
            optimizer.zero_grad(set_to_none=True)
            loss, _ = model.training_loss(
                adj, users, pos + U, neg + U, cfg.lambda_reg,
                cfg.reg_scaling, **hard, **cfg.loss_options)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            return t1 - t0, t2 - t1, t3 - t2, t4 - t3

        model.train()
        for _ in range(3):
            step()
        runs = [step() for _ in range(args.repeat)]
        ms = [statistics.median(c) * 1e3 for c in zip(*runs)]
        # PyTorch's default Adam on the same parameters and gradients.
        plain = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        plain_ms = []
        for k in range(args.repeat + 3):
            t0 = time.perf_counter()
            plain.step()
            if k >= 3:
                plain_ms.append((time.perf_counter() - t0) * 1e3)
        steps = cfg.steps_per_epoch or -(-len(sampler) // cfg.batch_size)
        negs = f'{cfg.num_negatives}' + (' shared' if cfg.shared_negatives
                                         else '')
        print(f'| {name} ({rname}) | {cfg.batch_size} | {negs} | '
              f'{ms[0]:.1f} | {ms[1]:.1f} | {ms[2]:.1f} | {ms[3]:.1f} | '
              f'{sum(ms):.1f} | {steps} | {sum(ms) * steps / 1e3:.1f} | '
              f'{statistics.median(plain_ms):.1f} |', flush=True)
        if args.profile:
            from torch.profiler import profile
            with profile() as prof:
                for _ in range(3):
                    step()
            profiles.append((name, prof))
    print(load_note())
    for name, prof in profiles:
        print(f'\n{name}:')
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=12))


if __name__ == '__main__':
    main()
