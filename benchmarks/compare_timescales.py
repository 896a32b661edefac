"""The two time scales on MovieLens-100K: every user's last 10 ratings are
the test future and the 10 before them the validation future (ratings <= 2
are skips: read as input, never targets). Short term: HR@10 / NDCG@10 of the
first future item; long term: Recall@20 of the future window. History items
masked, full ranking, each model selected on validation for its own time
scale.

    python benchmarks/compare_timescales.py --seeds 0 1 2

Writes benchmarks/results/timescales_ml100k.json.
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

from pyg_recsys.data.sequences import CONTEXT_FEATURES, load_sequences  # noqa: E402
from pyg_recsys.nn.models.item_sources import item_vectors  # noqa: E402
from pyg_recsys.nn.models.sequential import (  # noqa: E402
    MostPopularNext,
    SequentialUserRNN,
    TasteVector,
)
from pyg_recsys.train.sequential import (  # noqa: E402
    SequenceConfig,
    SequenceTrainer,
)

LONG = 'long_recall@20'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--epochs', type=int, default=40)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--tag', default='')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_sequences('ml-100k', require_dataset('ml-100k'))
    split = data.horizon_split(10)
    print(f'{data}; {split.test_users.numel()} users evaluated; '
          f'{args.threads} threads; {load_note()}', flush=True)
    base = dict(epochs=args.epochs, batch_size=64, lr=2e-3, max_len=50,
                patience=8, skip_threshold=2.0, long_k=20, device='cpu')
    runs = []
    for seed in args.seeds:
        row = {'seed': seed}

        def run(name, model, **cfg):
            start = time.perf_counter()
            cfg = SequenceConfig(**{**base, 'seed': seed, **cfg})
            trainer = SequenceTrainer(model, split, cfg, progress=False)
            rep = trainer.fit()
            rep['wall_seconds'] = round(time.perf_counter() - start, 1)
            row[name] = {k: rep[k] for k in ('test', 'valid', 'epoch',
                                             'wall_seconds')}
            t = rep['test']
            print(f"seed {seed} {name}: short HR@10 {t['hit@10']:.4f} "
                  f"NDCG@10 {t['ndcg@10']:.4f}, long R@20 {t[LONG]:.4f} "
                  f"(epoch {rep['epoch']}, {rep['wall_seconds']} s)",
                  flush=True)

        counts = torch.bincount(split.train.items[~split.train.skips()],
                                minlength=data.num_items)
        run('most_popular', MostPopularNext(counts))
        w2v = item_vectors('item2vec', split.train, args.dim, seed=seed)
        for decay in (1.0, 0.7):
            run(f'taste_item2vec_{decay}', TasteVector(w2v, decay))
        gcn = item_vectors('lightgcn', split.train, args.dim, seed=seed,
                           lr=5e-3)
        trans = item_vectors('transition', split.train, args.dim, seed=seed)
        variants = {
            # name: (item vectors, freeze, context, loss, window, monitor)
            'rnn_learned': (None, False, (), 'ce', 1, 'ndcg@10'),
            'rnn_learned_context': (None, False, CONTEXT_FEATURES, 'ce', 1,
                                    'ndcg@10'),
            'rnn_item2vec_frozen': (w2v, True, (), 'ce', 1, 'ndcg@10'),
            'rnn_item2vec_tuned': (w2v, False, (), 'ce', 1, 'ndcg@10'),
            'rnn_lightgcn_tuned': (gcn, False, (), 'ce', 1, 'ndcg@10'),
            'rnn_transition_tuned': (trans, False, (), 'ce', 1, 'ndcg@10'),
            'rnn_item2vec_context': (w2v, False, CONTEXT_FEATURES, 'ce', 1,
                                     'ndcg@10'),
            'rnn_item2vec_long': (w2v, False, CONTEXT_FEATURES, 'ce', 1,
                                  LONG),
            'rnn_learned_cosine10': (None, False, (), 'cosine', 10, LONG),
        }
        for name, (vec, freeze, ctx, loss, window, monitor) in \
                variants.items():
            torch.manual_seed(seed)
            model = SequentialUserRNN(data.num_items, args.dim, dropout=0.3,
                                      item_vectors=vec, freeze=freeze,
                                      context_dim=len(ctx),
                                      normalize=loss == 'cosine')
            run(name, model, context=ctx, loss=loss, window=window,
                monitor=monitor)
        runs.append(row)
    names = [k for k in runs[0] if k != 'seed']
    summary = {}
    for name in names:
        summary[name] = {}
        for key in ('hit@10', 'ndcg@10', LONG):
            vals = [r[name]['test'][key] for r in runs]
            summary[name][key] = (statistics.mean(vals), statistics.pstdev(
                vals) if len(vals) > 1 else 0.0)
        s = summary[name]
        print(f"{name:24s} short HR@10 {s['hit@10'][0]:.4f} NDCG@10 "
              f"{s['ndcg@10'][0]:.4f}  long R@20 {s[LONG][0]:.4f} +- "
              f"{s[LONG][1]:.4f}")
    out = osp.join(REPO, 'benchmarks', 'results',
                   f'timescales_ml100k{args.tag}.json')
    with open(out, 'w') as f:
        json.dump({'args': vars(args), 'runs': runs, 'summary': summary}, f,
                  indent=1)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
