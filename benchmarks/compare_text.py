"""Text-aware and zero-shot recommendation on MIND (RecLM's split and
protocol): random, most-popular, zero-shot text cosine, the EasyRec-style
aligned adapter and RecLM-style text fusion in front of MF and LightGCN,
under two selection rules side by side:

* ``reclm``: the epoch with the best *test* Recall@20 (RecLM's rule;
  labelled best-on-test);
* ``fair``: selection on a validation split carved from training (one
  training click per user with two or more), then one test evaluation.

    python benchmarks/compare_text.py --models fusion-mf --seeds 0 1 2

``--dataset ml-100k-cold`` runs the same on MovieLens-100K with the newest
10% of movies held out of training (zero-shot: rank only those; full-shot:
all items, training and validation items masked; ``fair`` selects on its
random validation split).

Writes benchmarks/results/text_<dataset><tag>.json.
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import REPO, load_note, require_dataset  # noqa: E402

from pyg_recsys.data import load_dataset  # noqa: E402
from pyg_recsys.data.item_text import (  # noqa: E402
    holdout_valid,
    load_item_records,
    ml100k_cold_start,
)
from pyg_recsys.metrics import Evaluator, reclm_protocol  # noqa: E402
from pyg_recsys.nn.models import LightGCN  # noqa: E402
from pyg_recsys.nn.models.text import (  # noqa: E402
    TextAlign,
    TextFusion,
    TextRegularizedLightGCN,
    TextZeroShot,
)
from pyg_recsys.text import (  # noqa: E402
    SentenceEncoder,
    encode_texts,
    item_texts,
    mean_of_items,
)
from pyg_recsys.train import TrainConfig, Trainer  # noqa: E402

MODELS = ('fusion-mf', 'fusion-lightgcn', 'align', 'lightgcn',
          'text-lightgcn')
KS = (20, 40)
METRICS = ('recall', 'ndcg')


def build(name, graph, text, args):
    if name == 'fusion-mf':
        return TextFusion(graph.num_users, text, embedding_dim=args.dim,
                          text_bias=not args.no_bias, dropout=args.dropout,
                          item_ids=args.item_ids)
    if name == 'fusion-lightgcn':
        return TextFusion(graph.num_users, text, embedding_dim=args.dim,
                          backbone='lightgcn', num_layers=2,
                          text_bias=not args.no_bias, dropout=args.dropout,
                          item_ids=args.item_ids)
    if name == 'align':
        return TextAlign(text, history=graph.csr('train'),
                         temperature=args.temperature)
    if name == 'lightgcn':
        return LightGCN(num_users=graph.num_users,
                        num_items=graph.num_items, embedding_dim=args.dim,
                        num_layers=2)
    if name == 'text-lightgcn':
        return TextRegularizedLightGCN(graph.num_users, text,
                                       embedding_dim=args.dim, num_layers=2)
    raise ValueError(name)


def protocol_evaluators(graph):
    return {s: Evaluator(graph, ks=KS, metrics=METRICS,
                         **reclm_protocol(graph, s))
            for s in ('zero-shot', 'full-shot')}


def evaluate(model, graph, evaluators, adj):
    model.eval()
    with torch.no_grad():
        out = model.get_embedding(adj)
    u, i = out[:graph.num_users], out[graph.num_users:]
    return {s: ev.evaluate(u, i) for s, ev in evaluators.items()}


def run(name, graph, text, args, seed, rule, setting=None):
    r"""Trains one model; :obj:`rule='reclm'` selects on the test split of
    :obj:`setting`, :obj:`'fair'` on the carved validation split."""
    torch.manual_seed(seed)
    if rule == 'fair' and graph.valid is None:
        graph = holdout_valid(graph, seed=seed)
    evs = protocol_evaluators(graph)
    model = build(name, graph, text, args)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, lambda_reg=args.reg, eval_every=1,
                      patience=args.patience if rule == 'fair' else 0,
                      select='test' if rule == 'reclm' else 'valid',
                      monitor='recall@20', ks=KS, negative_pool='train',
                      seed=seed, device='cpu', threads=args.threads)
    given = {'test': evs[setting]} if rule == 'reclm' else {
        'valid': Evaluator(graph, 'valid', ks=KS, metrics=METRICS)}
    trainer = Trainer(model, graph, cfg, progress=False, evaluators=given)
    start = time.perf_counter()
    report = trainer.fit()
    seconds = time.perf_counter() - start
    return {'epoch': report.get('epoch'), 'seconds': round(seconds, 1),
            'selection': trainer.selection,
            'test': evaluate(model, graph, evs, trainer.adj)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='mind',
                   choices=['mind', 'ml-100k-cold'])
    p.add_argument('--models', nargs='+', default=['fusion-mf'],
                   choices=MODELS)
    p.add_argument('--rules', nargs='+', default=['fair', 'reclm'],
                   choices=['fair', 'reclm'])
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--epochs', type=int, default=50)
    p.add_argument('--dim', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--reg', type=float, default=1e-4)
    p.add_argument('--batch-size', type=int, default=4096)
    p.add_argument('--dropout', type=float, default=0.0)
    p.add_argument('--no-bias', action='store_true')
    p.add_argument('--item-ids', action='store_true',
                   help='text-fusion: add id embeddings (zero for new items)')
    p.add_argument('--temperature', type=float, default=0.05)
    p.add_argument('--patience', type=int, default=10)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--tag', default='')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.dataset == 'mind':
        root = require_dataset('mind-reclm')
        graph = load_dataset('mind-reclm', root)
        records = load_item_records('mind-reclm', root)
    else:  # the newest 10% of movies never occur in training or validation
        root = require_dataset('ml-100k')
        graph, _ = ml100k_cold_start(root, seed=0)
        records = load_item_records('ml-100k', root)
    texts = item_texts(records)
    print(f'{graph}; {args.threads} threads; {load_note()}', flush=True)

    # Encoding: the first call encodes (unless cached), the second reads.
    encoder = SentenceEncoder()
    timing = {}
    for key in ('first', 'cached'):
        start = time.perf_counter()
        text = encode_texts(encoder, texts, progress=False)
        timing[key] = round(time.perf_counter() - start, 2)
    print(f'encode {len(texts)} items: {timing}', flush=True)

    out = {'args': vars(args), 'encode_seconds': timing, 'baselines': {},
           'runs': []}
    evs = protocol_evaluators(graph)
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(graph.num_users, graph.num_items, generator=gen)
    deg = graph.item_degree().float()
    out['baselines']['random'] = {s: ev.evaluate_scores(lambda u: noise[u])
                                  for s, ev in evs.items()}
    out['baselines']['most_popular'] = {
        s: ev.evaluate_scores(lambda u: deg.expand(u.numel(), -1))
        for s, ev in evs.items()}
    if args.dataset == 'mind':  # training clicks per item of the subcategory
        cats = [r.get('sub_cate', '') for r in records]
        index = {c: k for k, c in enumerate(sorted(set(cats)))}
        cat = torch.tensor([index[c] for c in cats])
        total = torch.zeros(len(index)).index_add_(0, cat, deg)
        items = torch.zeros(len(index)).index_add_(
            0, cat, (deg > 0).float())
        cat_pop = (total / items.clamp(min=1))[cat]
        out['baselines']['subcategory_popularity'] = {
            s: ev.evaluate_scores(lambda u: cat_pop.expand(u.numel(), -1))
            for s, ev in evs.items()}
    rowptr, col = graph.csr('train')
    zs = TextZeroShot(mean_of_items(rowptr, col, text), text)
    out['baselines']['zero_shot_text'] = evaluate(zs, graph, evs, None)
    for key, val in out['baselines'].items():
        print(key, {s: (round(m['recall@20'], 4), round(m['ndcg@20'], 4))
                    for s, m in val.items()}, flush=True)

    path = osp.join(REPO, 'benchmarks', 'results',
                    f'text_{args.dataset}{args.tag}.json')
    for name in args.models:
        for rule in args.rules:
            settings = ['zero-shot', 'full-shot'] if rule == 'reclm' \
                else [None]
            for setting in settings:
                rows = []
                for seed in args.seeds:
                    r = run(name, graph, text, args, seed, rule, setting)
                    r.update(model=name, rule=rule, setting=setting,
                             seed=seed)
                    rows.append(r)
                    out['runs'].append(r)
                    shown = {s: (round(m['recall@20'], 4),
                                 round(m['ndcg@20'], 4))
                             for s, m in r['test'].items()}
                    print(f'{name} {rule} {setting or ""} seed {seed}: '
                          f'{shown} (epoch {r["epoch"]}, {r["seconds"]} s)',
                          flush=True)
                    with open(path, 'w') as f:
                        json.dump(out, f, indent=1)
                for s in ('zero-shot', 'full-shot'):
                    if setting not in (None, s):
                        continue
                    vals = {k: [r['test'][s][k] for r in rows]
                            for k in ('recall@20', 'ndcg@20')}
                    print(f'  {name} {rule} {s}: ' + ', '.join(
                        f'{k} {statistics.mean(v):.4f} +- '
                        f'{statistics.pstdev(v):.4f}'
                        for k, v in vals.items()), flush=True)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
