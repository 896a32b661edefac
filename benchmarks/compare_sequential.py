"""Next-item prediction on the S3-Rec sequences: most-popular, the taste
vector and the recurrent user model, one evaluator (full ranking, history
masked, leave-one-out, model selected on validation NDCG@10).

    python benchmarks/compare_sequential.py --dataset beauty --seeds 0 1 2

Writes benchmarks/results/sequential_<dataset>.json.
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

from pyg_recsys.data.sequences import load_sequences  # noqa: E402
from pyg_recsys.nn.models.item_sources import (  # noqa: E402
    SOURCES,
    item_vectors,
)
from pyg_recsys.nn.models.sequential import (  # noqa: E402
    MostPopularNext,
    SequentialUserRNN,
    TasteVector,
)
from pyg_recsys.train.sequential import (  # noqa: E402
    SequenceConfig,
    SequenceTrainer,
)


def write(out: str, args: argparse.Namespace, runs: list) -> None:
    summary = {}
    for key in ('hit@10', 'ndcg@10', 'hit@20', 'ndcg@20'):
        vals = [r['rnn']['test'][key] for r in runs]
        summary[key] = (statistics.mean(vals),
                        statistics.pstdev(vals) if len(vals) > 1 else 0.0)
    print(f'RNN mean over {len(runs)} seeds: ' + ', '.join(
        f'{k} {m:.4f} +- {s:.4f}' for k, (m, s) in summary.items()))
    with open(out, 'w') as f:
        json.dump({'args': vars(args), 'runs': runs, 'summary': summary}, f,
                  indent=1)
    print(f'wrote {out}', flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='beauty',
                   choices=['beauty', 'sports', 'toys', 'yelp-seq'])
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--epochs', type=int, default=200)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--hidden-dim', type=int, default=None)
    p.add_argument('--max-len', type=int, default=50)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--dropout', type=float, default=0.0)
    p.add_argument('--normalize', action='store_true')
    p.add_argument('--temperature', type=float, default=0.1)
    p.add_argument('--weight-decay', type=float, default=0.0)
    p.add_argument('--patience', type=int, default=10)
    p.add_argument('--num-negatives', type=int, default=None,
                   help='sampled softmax over this many uniform items')
    p.add_argument('--item-vectors', default='learned', choices=SOURCES,
                   help='where the item vectors come from')
    p.add_argument('--freeze', action='store_true',
                   help='keep given item vectors fixed')
    p.add_argument('--residual', choices=['last', 'mean'], default=None,
                   help="add the last item's vector (or the mean of those "
                   "read) to the user vector")
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--tag', default='')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = require_dataset('seq-s3rec')
    data = load_sequences(args.dataset, root)
    split = data.leave_one_out()
    print(f'{data}; {args.threads} threads; {load_note()}', flush=True)
    runs = []
    out = osp.join(REPO, 'benchmarks', 'results',
                   f'sequential_{args.dataset}{args.tag}.json')
    for seed in args.seeds:
        cfg = SequenceConfig(epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, weight_decay=args.weight_decay,
                             patience=args.patience, seed=seed,
                             num_negatives=args.num_negatives,
                             max_len=args.max_len,
                             device='cpu')
        counts = torch.bincount(split.train.items,
                                minlength=data.num_items)
        pop = SequenceTrainer(MostPopularNext(counts), split, cfg,
                              progress=False).fit()
        start = time.perf_counter()
        given = item_vectors(args.item_vectors, split.train, args.dim,
                             seed=seed)
        source_seconds = time.perf_counter() - start
        torch.manual_seed(seed)
        rnn = SequentialUserRNN(data.num_items, args.dim,
                                hidden_dim=args.hidden_dim,
                                dropout=args.dropout,
                                normalize=args.normalize,
                                temperature=args.temperature,
                                item_vectors=given, freeze=args.freeze,
                                residual=args.residual)
        trainer = SequenceTrainer(rnn, split, cfg, progress=False)
        start = time.perf_counter()
        report = trainer.fit()
        wall = time.perf_counter() - start
        # The same model under the other history protocols (the S3-Rec /
        # ICLRec codes zero history scores, RecBole keeps them).
        by_history = {}
        for mode in ('zero', 'keep'):
            trainer.config.history = mode
            by_history[mode] = trainer.evaluate('test')
        trainer.config.history = 'mask'
        # The taste vector over the source's vectors (those of the trained
        # RNN when they are learned).
        vectors = given if given is not None else \
            rnn.item_vectors().detach()
        taste = {decay: SequenceTrainer(TasteVector(vectors, decay), split,
                                        cfg, progress=False).fit()['test']
                 for decay in (1.0, 0.7)}
        row = {'seed': seed, 'most_popular': pop['test'],
               'taste_vector': {str(k): v for k, v in taste.items()},
               'rnn': {'test': report['test'], 'valid': report['valid'],
                       'epoch': report['epoch'],
                       'epochs_run': report['epochs_run'],
                       'train_seconds': report['train_seconds'],
                       'source_seconds': round(source_seconds, 1),
                       'test_by_history': by_history,
                       'wall_seconds': round(wall, 1)},
               'curve': trainer.history}
        runs.append(row)
        print(f"seed {seed}: RNN HR@10 {report['test']['hit@10']:.4f} "
              f"NDCG@10 {report['test']['ndcg@10']:.4f} (epoch "
              f"{report['epoch']} of {report['epochs_run']}, "
              f"{report['train_seconds']:.0f} s); taste(1.0) "
              f"{taste[1.0]['hit@10']:.4f} / {taste[1.0]['ndcg@10']:.4f}; "
              f"most-popular {pop['test']['hit@10']:.4f} / "
              f"{pop['test']['ndcg@10']:.4f}", flush=True)
        # Written after every seed, so that a stopped run keeps its seeds.
        write(out, args, runs)


if __name__ == '__main__':
    main()
