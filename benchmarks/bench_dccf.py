"""DCCF training-step and epoch time on Gowalla, side by side with this
package's LightGCN and with DCCF's official formulation run through plain
PyTorch ops (the reference path).

    python benchmarks/bench_dccf.py [--dataset gowalla] [--threads 2] [--steps 3]
                                    [--reference-steps 1]

Every path runs the same thing per step: sample a batch, compute the loss,
backward, Adam. The reference path is written here from the method as the
official code runs it: COO adjacency and ``torch.sparse.mm``; per layer the
graph view, the intent view, two adaptive masks built as COO tensors from the
per-edge cosines (row-normalised with ``index_add``), two masked products;
InfoNCE materialising ``exp`` of the full B x B similarity matrix with the
code's 1e-8 guards. Nothing dense of size N x N is formed on either path.

Both DCCF paths start from the same weights and the same batch; their first
losses are printed and must agree (a guard that they compute the same thing).
An epoch is the recipe's (the Trainer's epoch): LightGCN one pass of the
training interactions, DCCF the official code's fixed 40 batches
(``steps_per_epoch``); reported as steps x median step time.

The floor of the contrastive term: per layer and side (distinct users, then
distinct positive items: B rows, V = 3 views sharing the anchor) the loss
needs the B x VB logits (2 B VB d FLOPs), one exp per logit, and the two
gradient products (2 x 2 B VB d FLOPs). Divided by this machine's rates,
measured in the same run on the same threads: the GEMM rate of the best of
a 2048^3 product and the kernel's own block shapes, and the exp rate of the
fastest exp-containing vectorised kernel (torch.exp, softmax or sigmoid, per
element, on in-cache data). The step is reported as a ratio to that floor.
"""
import argparse
import functools
import time

import torch
import torch.nn.functional as F
from _common import load_note, require_dataset

from pyg_recsys.data import BPRSampler, load_dataset
from pyg_recsys.train import TrainConfig, build_model, get_recipe


def reference_adjacency(graph):
    """LightGCN's D^-1/2 A D^-1/2 as a COO tensor (the official code's)."""
    ei = graph.edge_index
    n = graph.num_users + graph.num_items
    deg = torch.bincount(ei[0], minlength=n).float()
    dis = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    value = dis[ei[0]] * dis[ei[1]]
    return torch.sparse_coo_tensor(ei, value, (n, n)).coalesce()


def reference_masked(adj_index, n, x, h):
    """D^-1 of the (cos + 1) / 2 edge weights of ``h``, applied to ``x``."""
    head, tail = adj_index
    hn = F.normalize(h, dim=1)
    alpha = ((hn[head] * hn[tail]).sum(1) + 1) / 2
    row = torch.zeros(n, dtype=alpha.dtype).index_add_(0, head, alpha)
    value = alpha / row[head]
    g = torch.sparse_coo_tensor(adj_index, value, (n, n))
    return torch.sparse.mm(g, x)


def reference_nce(a, p, tau):
    a, p = F.normalize(a, dim=1), F.normalize(p, dim=1)
    pos = torch.exp((a * p).sum(1) / tau)
    ttl = torch.exp(a @ p.t() / tau).sum(1)
    return -torch.log(pos / (ttl + 1e-8) + 1e-8).mean()


def reference_loss(model, adj, users, pos, neg, lambda_reg):
    """DCCF's loss on the model's parameters, official formulation."""
    nu = model.num_users
    n = nu + model.num_items
    index = adj.indices()
    x = model.embedding.weight
    out, views = x, []
    for _ in range(model.num_layers):
        z = torch.sparse.mm(adj, x)
        r = torch.cat([
            F.softmax(x[:nu] @ model.user_intents, 1) @ model.user_intents.t(),
            F.softmax(x[nu:] @ model.item_intents, 1) @ model.item_intents.t()])
        hb = reference_masked(index, n, x, z)
        hg = reference_masked(index, n, x, r)
        views.append((z, r, hb, hg))
        x = x + z + r + hb + hg
        out = out + x
    u, p, q = out[users], out[pos + nu], out[neg + nu]
    bpr = F.softplus((u * q).sum(1) - (u * p).sum(1)).mean()
    e = model.embedding.weight
    reg = lambda_reg * (e[users].pow(2).sum() + e[pos + nu].pow(2).sum()
                        + e[neg + nu].pow(2).sum())
    proto = model.proto_reg * (model.user_intents.pow(2).sum()
                               + model.item_intents.pow(2).sum())
    uu, ii = torch.unique(users), torch.unique(pos) + nu
    ssl = 0.0
    for z, r, hb, hg in views:
        for nodes in (uu, ii):
            for v in (r, hb, hg):
                ssl = ssl + reference_nce(z[nodes], v[nodes],
                                          model.temperature)
    return bpr + reg + proto + model.ssl_weight * ssl


def machine_rates(d=32, width=3 * 8000):
    """GEMM FLOP/s and exp/s of this machine on the current threads."""
    from _common import timeit

    from pyg_recsys.nn.loss import _rows_per_block
    chunk = _rows_per_block(None, width, 'info_nce')  # the kernel's block
    big = torch.randn(2048, 2048)
    gemm = 2 * 2048 ** 3 / timeit(lambda: big @ big, repeat=5)
    q, v = torch.randn(chunk, d), torch.randn(width, d)
    s = torch.empty(chunk, width)
    grad_v = torch.zeros(width, d)
    per_block = 3 * 2 * chunk * width * d / timeit(lambda: (
        torch.mm(q, v.t(), out=s), torch.mm(s, v), grad_v.addmm_(s.t(), q)),
        repeat=20)
    x = torch.rand(chunk, width) * 2 - 1
    out = torch.empty_like(x)
    exp = max(x.numel() / timeit(f, repeat=20) for f in (
        lambda: torch.exp(x, out=out), lambda: torch.softmax(x, 1),
        lambda: torch.sigmoid(x, out=out)))
    return max(gemm, per_block), exp


def contrastive_floor(batches, layers, d, views, rates):
    """Seconds of the contrastive term at the machine's rates: FLOPs / GEMM
    rate + exps / exp rate, averaged over the timed batches."""
    gemm, exp = rates
    total = []
    for users, pos, _ in batches[1:]:
        b2 = sum(int(torch.unique(x).numel()) ** 2 for x in (users, pos))
        flops = layers * 3 * 2 * views * b2 * d
        exps = layers * views * b2
        total.append(flops / gemm + exps / exp)
    return sorted(total)[len(total) // 2]


def time_steps(step, batches, steps):
    times = []
    for k in range(steps + 1):  # the first call warms up
        start = time.perf_counter()
        loss = step(*batches[k])
        times.append(time.perf_counter() - start)
        if k == 0:
            first = loss
    body = sorted(times[1:])
    return body[len(body) // 2], first


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dataset', default='gowalla')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--skip-reference', action='store_true')
    p.add_argument('--reference-steps', type=int, default=None,
                   help='timed steps of the reference path (default: '
                   '--steps; about 2 minutes each on Gowalla)')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_dataset(args.dataset, root=require_dataset(args.dataset))
    n_train = graph.train.size(1)
    print(f'{graph}; {args.threads} threads; {load_note()}', flush=True)
    rows = []

    # LightGCN with the package's recipe for this data set.
    recipe = get_recipe('lightgcn', args.dataset,
                        'paper' if args.dataset in ('gowalla', 'yelp2018')
                        else 'default')
    cfg = TrainConfig(**recipe.train)
    torch.manual_seed(0)
    lgn = build_model('lightgcn', graph, **recipe.model_kwargs)
    adj = graph.norm_adj()
    U = graph.num_users  # the sampler draws item ids; models take node ids
    sampler = BPRSampler(graph, cfg.sampler, cfg.num_negatives, seed=0)
    opt = torch.optim.Adam(lgn.parameters(), lr=cfg.lr)
    hard = {'hard_negatives': True} if cfg.negative_sampling == 'dns' else {}

    def lgn_step(users, pos, neg):
        opt.zero_grad(set_to_none=True)
        loss, _ = lgn.training_loss(adj, users, pos + U, neg + U,
                                    cfg.lambda_reg, cfg.reg_scaling, **hard)
        loss.backward()
        opt.step()
        return loss.item()

    batches = [sampler.sample(cfg.batch_size) for _ in range(args.steps + 1)]
    t, _ = time_steps(lgn_step, batches, args.steps)
    rows.append(('LightGCN (package, recipe ' + recipe.train.get(
        'negative_sampling', 'uniform') + ')', cfg.batch_size, t,
        -(-n_train // cfg.batch_size)))

    # DCCF, package and reference, same weights and batches.
    recipe = get_recipe('dccf', args.dataset, 'default')
    cfg = TrainConfig(**recipe.train)
    sampler = BPRSampler(graph, cfg.sampler, 1, seed=0)
    batches = [sampler.sample(cfg.batch_size) for _ in range(args.steps + 1)]
    steps_per_epoch = cfg.steps_per_epoch or -(-n_train // cfg.batch_size)
    torch.manual_seed(0)
    dccf = build_model('dccf', graph, **recipe.model_kwargs)
    init = {k: v.clone() for k, v in dccf.state_dict().items()}
    opt = torch.optim.Adam(dccf.parameters(), lr=cfg.lr)

    def dccf_step(users, pos, neg):
        opt.zero_grad(set_to_none=True)
        loss, _ = dccf.training_loss(adj, users, pos + U, neg + U,
                                     cfg.lambda_reg, cfg.reg_scaling)
        loss.backward()
        opt.step()
        return loss.item()

    t, first = time_steps(dccf_step, batches, args.steps)
    rows.append(('DCCF (package: fused ops, fused InfoNCE)',
                 cfg.batch_size, t, steps_per_epoch))
    # The same with the InfoNCE blocks of 32 anchors used before ~2^22
    # logits became the default (same weights and batches).
    import pyg_recsys.nn.models.dccf as dccf_module
    default_nce = dccf_module.info_nce
    dccf.load_state_dict(init)
    opt = torch.optim.Adam(dccf.parameters(), lr=cfg.lr)
    dccf_module.info_nce = functools.partial(default_nce, chunk_size=32)
    try:
        t32, _ = time_steps(dccf_step, batches, args.steps)
    finally:
        dccf_module.info_nce = default_nce
    rows.append(('DCCF (package, InfoNCE blocks of 32 rows)',
                 cfg.batch_size, t32, steps_per_epoch))
    print(f'DCCF first loss, package:   {first:.6f}', flush=True)
    rates = machine_rates(d=dccf.embedding_dim)
    floor = contrastive_floor(batches, dccf.num_layers,
                              dccf.embedding_dim, 3, rates)
    print(f'machine: GEMM {rates[0] / 1e9:.0f} GFLOP/s, exp '
          f'{rates[1] / 1e9:.2f} G/s on {args.threads} threads; floor of '
          f'the contrastive term {floor:.3f} s; DCCF step / floor '
          f'{t / floor:.2f}', flush=True)

    if not args.skip_reference:
        dccf.load_state_dict(init)
        opt = torch.optim.Adam(dccf.parameters(), lr=cfg.lr)
        ref_adj = reference_adjacency(graph)

        def ref_step(users, pos, neg):
            opt.zero_grad(set_to_none=True)
            loss = reference_loss(dccf, ref_adj, users, pos, neg,
                                  cfg.lambda_reg)
            loss.backward()
            opt.step()
            return loss.item()

        ref_steps = args.reference_steps or args.steps
        t, ref_first = time_steps(ref_step, batches[:ref_steps + 1],
                                  ref_steps)
        print(f'DCCF first loss, reference: {ref_first:.6f}', flush=True)
        if abs(ref_first - first) > 1e-3 * max(1.0, abs(first)):
            raise SystemExit('the two DCCF paths disagree: not comparable')
        rows.append(('DCCF (reference: torch.sparse COO, full exp matrix)',
                     cfg.batch_size, t, steps_per_epoch))

    print(f"\n{'path':<52} {'batch':>6} {'s / step':>9} {'steps':>6} "
          f"{'s / epoch':>10}")
    for name, bs, t, steps in rows:
        print(f'{name:<52} {bs:>6} {t:>9.3f} {steps:>6} {t * steps:>10.1f}')
    print(f'\nDCCF blocks of 32 rows / default blocks: '
          f'{rows[2][2] / rows[1][2]:.2f}x; DCCF epoch / LightGCN epoch: '
          f'{rows[1][2] * rows[1][3] / (rows[0][2] * rows[0][3]):.1f}x')
    if len(rows) == 4:
        print(f'DCCF package vs reference: {rows[3][2] / rows[1][2]:.2f}x '
              f'faster per step')


if __name__ == '__main__':
    main()
