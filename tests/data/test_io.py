import gzip
import math
import random
import time

import numpy as np
import pytest
import torch

from pyg_recsys.data import (
    Interactions,
    read_lightgcn,
    read_recbole_atomic,
    read_table,
    remap_ids,
)


def write(path, text, gz=False):
    data = text.encode() if isinstance(text, str) else text
    if gz:
        with gzip.open(path, 'wb') as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def naive_lightgcn(text):
    users, items = [], []
    for line in text.splitlines():
        tokens = [int(t) for t in line.split()]
        for item in tokens[1:]:
            users.append(tokens[0])
            items.append(item)
    return torch.tensor([users, items], dtype=torch.long)


# ---------------------------------------------------------------- LightGCN
def test_read_lightgcn_basic(tmp_path):
    path = write(tmp_path / 'train.txt', '0 1 2 3\n1 0\n2 5 4\n')
    pairs = read_lightgcn(path)
    assert pairs.dtype == torch.long
    assert pairs.tolist() == [[0, 0, 0, 1, 2, 2], [1, 2, 3, 0, 5, 4]]


@pytest.mark.parametrize('gz', [False, True])
def test_read_lightgcn_layout_variants(tmp_path, gz):
    # Blank lines, a user without items, tabs and repeated spaces, CRLF line
    # ends, a missing final newline and a user on two lines.
    text = ('\n0 1 2\r\n\n  3\n1\t4  5 \r\n\n3 7\n0 9')
    name = 'train.txt.gz' if gz else 'train.txt'
    pairs = read_lightgcn(str(write(tmp_path / name, text, gz=gz)))
    assert pairs.tolist() == [[0, 0, 1, 1, 3, 0], [1, 2, 4, 5, 7, 9]]


def test_read_lightgcn_cr_line_ends_and_bom(tmp_path):
    path = write(tmp_path / 'mac.txt', b'\xef\xbb\xbf0 1 2\r1 3\r\r2 4')
    assert read_lightgcn(path).tolist() == [[0, 0, 1, 2], [1, 2, 3, 4]]


def test_read_lightgcn_gz_by_suffix_only(tmp_path):
    path = write(tmp_path / 'train.txt', '0 1\n', gz=True)
    with pytest.raises(ValueError, match='train.txt:1'):
        read_lightgcn(path)  # gzip bytes in a file not named .gz


def test_read_lightgcn_matches_naive_reader(tmp_path):
    rng = random.Random(0)
    lines = []
    for user in range(300):
        items = rng.sample(range(10**6), rng.randint(0, 30))
        lines.append(' '.join(map(str, [user] + items)))
    text = '\n'.join(lines) + '\n'
    pairs = read_lightgcn(write(tmp_path / 'x.txt.gz', text, gz=True))
    assert torch.equal(pairs, naive_lightgcn(text))


def test_read_lightgcn_keeps_duplicates(tmp_path):
    # Repeated pairs are returned as is; InteractionGraph de-duplicates them.
    pairs = read_lightgcn(write(tmp_path / 'x.txt', '0 1 1\n0 1\n'))
    assert pairs.tolist() == [[0, 0, 0], [1, 1, 1]]


@pytest.mark.parametrize('text,line,match', [
    ('0 1\n1 2 x3\n', 2, "'x3' is not a non-negative integer"),
    ('0 1\n\n1 -2\n', 3, 'negative id -2'),
    ('-1 2\n', 1, 'negative id -1'),
    ('0 1.5\n', 1, "'1.5' is not"),
    ('0 1,2\n', 1, "'1,2' is not"),
    ('user item\n0 1\n', 1, "'user' is not"),
    ('0 1\n0 12345678901234567890\n', 2, 'too large'),
    ('0 1\n1 2\x0c3\n', 2, 'unexpected character'),
])
def test_read_lightgcn_bad_tokens(tmp_path, text, line, match):
    path = write(tmp_path / 'bad.txt', text)
    with pytest.raises(ValueError, match=f'bad.txt:{line}: .*{match}'):
        read_lightgcn(path)


def test_read_lightgcn_bad_token_in_gz(tmp_path):
    path = write(tmp_path / 'bad.txt.gz', '0 1\n0 2\n1 a\n', gz=True)
    with pytest.raises(ValueError, match=r"bad\.txt\.gz:3: 'a'"):
        read_lightgcn(path)


def test_read_lightgcn_non_utf8(tmp_path):
    path = write(tmp_path / 'bad.txt', b'0 1\n0 \xff\n')
    with pytest.raises(ValueError, match='bad.txt:2'):
        read_lightgcn(path)


@pytest.mark.parametrize('text', ['', '\n\n  \n', '0\n1\n2\n'])
def test_read_lightgcn_empty(tmp_path, text):
    with pytest.raises(ValueError, match='empty'):
        read_lightgcn(write(tmp_path / 'empty.txt', text))


def test_read_lightgcn_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_lightgcn(tmp_path / 'nope.txt')


@pytest.mark.dataset
def test_read_lightgcn_gowalla_fast(shared_data):
    path = shared_data / 'gowalla' / 'train.txt.gz'
    if not path.exists():
        pytest.skip(f'{path} not found')
    read_lightgcn(shared_data / 'gowalla' / 'test.txt.gz')  # warm up
    t = time.perf_counter()
    pairs = read_lightgcn(path)
    elapsed = time.perf_counter() - t
    assert pairs.shape == (2, 810128)
    assert int(pairs[0].max()) == 29857 and int(pairs[1].max()) == 40980
    # Typically ~0.15 s; the bound leaves room for a loaded machine.
    assert elapsed < 3.0, f'parsing Gowalla took {elapsed:.2f} s'


# ------------------------------------------------------------------- table
def test_read_table_grouplens(tmp_path):
    path = write(tmp_path / 'u.data',
                 '196\t242\t3\t881250949\n186\t302\t3\t891717742\n'
                 '1\t1\t5\t874965758\n')
    table = read_table(path, columns=('user', 'item', 'rating', 'timestamp'),
                       id_base=1)
    assert isinstance(table, Interactions)
    assert table.pairs.tolist() == [[195, 185, 0], [241, 301, 0]]
    assert table.rating.tolist() == [3.0, 3.0, 5.0]
    assert table.timestamp.dtype == torch.float64
    assert table.timestamp.tolist() == [881250949, 891717742, 874965758]
    assert table.user_ids is None and table.item_ids is None


def test_read_table_lastfm_weights(tmp_path):
    path = write(tmp_path / 'data1.txt',
                 '424\t4076\t993\n1311\t1574\t3.2466e+05\n2\t1\t1.5\n')
    table = read_table(path, columns=('user', 'item', 'rating'), id_base=1)
    assert table.pairs.tolist() == [[423, 1310, 1], [4075, 1573, 0]]
    assert table.rating.tolist() == [993.0, 324660.0, 1.5]
    assert table.timestamp is None


def test_read_table_options(tmp_path):
    text = ('# a comment\nuser,item,extra\n\n3,4,x\r\n# again\n0,0,y\n')
    path = write(tmp_path / 't.csv.gz', text, gz=True)
    table = read_table(path, sep=',', columns=('user', 'item'), header=True,
                       comment='#')
    assert table.pairs.tolist() == [[3, 0], [4, 0]]
    assert table.rating is None


def test_read_table_line_numbers_count_only_line_ends(tmp_path):
    path = write(tmp_path / 't.tsv', '1\t2\ta\x0cb\r\n1\t2\t\x85\r3\tz\tc\n'
                 .encode())
    with pytest.raises(ValueError, match=r"t\.tsv:3: item 'z' is not an"):
        read_table(path)
    path = write(tmp_path / 'u.tsv', '1\t2\x0c\n')
    with pytest.raises(ValueError, match=r"u\.tsv:1: item '2\x0c' is not an"):
        read_table(path)


def test_read_table_whitespace_and_ignored_columns(tmp_path):
    path = write(tmp_path / 't.txt', '1  2 9\n3\t4 9\n')
    table = read_table(path, sep=None, columns=('user', 'item', None))
    assert table.pairs.tolist() == [[1, 3], [2, 4]]
    table = read_table(path, sep=None, columns=('skip', 'user', 'item'))
    assert table.pairs.tolist() == [[2, 4], [9, 9]]


def test_read_table_raw_tokens(tmp_path):
    path = write(tmp_path / 't.tsv', 'bob\t10\nalice\t2\nbob\t2\nzoe\t33\n')
    table = read_table(path, id_base=None)
    assert table.user_ids == ['alice', 'bob', 'zoe']
    assert table.item_ids == [2, 10, 33]  # integer tokens sort numerically
    assert table.pairs.tolist() == [[1, 0, 1, 2], [1, 0, 0, 2]]


@pytest.mark.parametrize('text,kwargs,line,match', [
    ('1\t2\t3\n1\t2\n', {}, 2, 'expected 3 fields like line 1, got 2'),
    ('1\t2\n1\t2\t3\n', {}, 2, 'expected 2 fields'),
    ('1\n', {}, 1, 'expected at least 2 fields'),
    ('1\t2\n1\tb\n', {}, 2, "item 'b' is not an integer"),
    ('1\t2\n1.5\t2\n', {}, 2, "user '1.5' is not an integer"),
    ('1\t2\n-3\t2\n', {}, 2, 'user id -3 is negative'),
    ('1\t2\n1\t0\n', {'id_base': 1}, 2, 'item id 0 is below id_base=1'),
    ('1\t2\n1\t99999999999999999999\n', {}, 2, 'item .* is too large'),
    ('1\t2\t3\n1\t2\tx\n', {'columns': ('user', 'item', 'rating')}, 2,
     "rating 'x' is not a number"),
    ('1\t2\n\t2\n', {}, 2, 'empty user id'),
    ('a\t2\n\t2\n', {'id_base': None}, 2, 'empty user id'),
    ('h\th\n1\t2\n1\t2\tz\n', {'header': True}, 3, 'expected 2 fields'),
])
def test_read_table_errors(tmp_path, text, kwargs, line, match):
    path = write(tmp_path / 'bad.tsv', text)
    with pytest.raises(ValueError, match=f'bad.tsv:{line}: {match}'):
        read_table(path, **kwargs)


@pytest.mark.parametrize('text,header', [('', False), ('\n\n', False),
                                         ('user\titem\n', True)])
def test_read_table_empty(tmp_path, text, header):
    with pytest.raises(ValueError, match='empty'):
        read_table(write(tmp_path / 'e.tsv', text), header=header)


def test_read_table_bad_columns(tmp_path):
    path = write(tmp_path / 't.tsv', '1\t2\n')
    with pytest.raises(ValueError, match="exactly one 'user'"):
        read_table(path, columns=('item', 'rating'))
    with pytest.raises(ValueError, match="exactly one 'item'"):
        read_table(path, columns=('user', 'item', 'item'))


# ----------------------------------------------------------------- RecBole
INTER = ('user_id:token\titem_id:token\trating:float\ttimestamp:float\n'
         '196\t242\t3\t881250949\n\n186\t302\t3.5\t891717742\n')


def test_read_recbole_atomic(tmp_path):
    cols = read_recbole_atomic(write(tmp_path / 'x.inter', INTER))
    assert list(cols) == ['user_id', 'item_id', 'rating', 'timestamp']
    assert cols['user_id'] == ['196', '186']
    assert cols['item_id'] == ['242', '302']
    assert cols['rating'].dtype == torch.float64
    assert cols['rating'].tolist() == [3.0, 3.5]
    assert cols['timestamp'].tolist() == [881250949.0, 891717742.0]
    only = read_recbole_atomic(tmp_path / 'x.inter', fields=['rating'])
    assert list(only) == ['rating']


def test_read_recbole_atomic_sequences(tmp_path):
    text = ('item_id:token\ttitle:token_seq\temb:float_seq\tscore:float\n'
            "1\tToy Story\t0.5 1\t\n2\tGoldenEye\t\t2e1\n")
    cols = read_recbole_atomic(write(tmp_path / 'x.item.gz', text, gz=True))
    assert cols['title'] == [['Toy', 'Story'], ['GoldenEye']]
    assert cols['emb'][0].tolist() == [0.5, 1.0]
    assert cols['emb'][1].numel() == 0
    assert math.isnan(cols['score'][0]) and cols['score'][1] == 20.0


@pytest.mark.parametrize('text,line,match', [
    ('user_id:token\titem_id\n1\t2\n', 1, "'item_id' is not 'name:type'"),
    ('user_id:token\titem_id:int\n1\t2\n', 1, "'item_id:int'"),
    ('a:token\ta:float\n1\t2\n', 1, "field 'a' is repeated"),
    (INTER + '1\t2\t3\n', 5, 'expected 4 fields'),
    (INTER + '1\t2\tx\t4\n', 5, "rating 'x' is not a number"),
    ('a:token\tb:float_seq\n1\t1 y\n', 2, "b 'y' is not a number"),
])
def test_read_recbole_atomic_errors(tmp_path, text, line, match):
    path = write(tmp_path / 'bad.inter', text)
    with pytest.raises(ValueError, match=f'bad.inter:{line}: .*{match}'):
        read_recbole_atomic(path)


def test_read_recbole_atomic_empty_and_unknown_field(tmp_path):
    with pytest.raises(ValueError, match='empty'):
        read_recbole_atomic(write(tmp_path / 'a.inter', ''))
    with pytest.raises(ValueError, match='empty'):
        read_recbole_atomic(write(tmp_path / 'b.inter', 'a:token\n\n'))
    path = write(tmp_path / 'c.inter', INTER)
    with pytest.raises(ValueError, match=r"\['genre'\] are not in"):
        read_recbole_atomic(path, fields=['genre'])


@pytest.mark.dataset
def test_read_recbole_atomic_ml100k(shared_data):
    folder = shared_data / 'ml-100k'
    if not folder.is_dir():
        pytest.skip(f'{folder} not found')
    inter = read_recbole_atomic(folder / 'ml-100k.inter')
    assert len(inter['user_id']) == 100000
    assert torch.bincount(inter['rating'].long()).tolist()[1:] == [
        6110, 11370, 27145, 34174, 21201]
    assert len(read_recbole_atomic(folder / 'ml-100k.item')['item_id']) \
        == 1682
    assert len(read_recbole_atomic(folder / 'ml-100k.user')['user_id']) \
        == 943


# ------------------------------------------------------------------- remap
def test_remap_ids_numeric():
    ids, vocab = remap_ids(['10', '2', '2', '33', '007', '7'])
    assert vocab == [2, 7, 10, 33]
    assert ids.dtype == torch.long
    assert ids.tolist() == [2, 0, 0, 3, 1, 1]


def test_remap_ids_strings():
    ids, vocab = remap_ids(['b', '10', 'a', '2', 'b'])
    assert vocab == ['10', '2', 'a', 'b']  # lexicographic
    assert ids.tolist() == [3, 0, 2, 1, 3]
    inverse = {raw: new for new, raw in enumerate(vocab)}
    assert [inverse[t] for t in ['b', '10', 'a', '2', 'b']] == ids.tolist()


@pytest.mark.parametrize('tokens', [
    [5, 3, 5, 100],
    np.array([5, 3, 5, 100], dtype=np.int32),
    torch.tensor([5, 3, 5, 100]),
])
def test_remap_ids_integer_inputs(tokens):
    ids, vocab = remap_ids(tokens)
    assert vocab == [3, 5, 100]
    assert ids.tolist() == [1, 0, 1, 2]


def test_remap_ids_edge_cases():
    ids, vocab = remap_ids([])
    assert ids.numel() == 0 and vocab == []
    ids, vocab = remap_ids(['-1', '1'])
    assert vocab == [-1, 1] and ids.tolist() == [0, 1]
    with pytest.raises(TypeError, match='integer ids'):
        remap_ids(torch.tensor([1.0, 2.0]))
