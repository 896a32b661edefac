import gzip
import random

import pytest
import torch

from pyg_recsys.data.sequences import (
    SequenceData,
    load_sequences,
    read_sequences,
)
from pyg_recsys.train.sequential import training_windows


def random_lists(num_users=30, num_items=20, seed=0, min_len=1, max_len=12):
    rng = random.Random(seed)
    return [[rng.randrange(num_items) for _ in range(rng.randint(min_len,
                                                                 max_len))]
            for _ in range(num_users)]


def test_leave_one_out_matches_a_naive_loop():
    lists = random_lists(min_len=1)
    data = SequenceData.from_lists(lists, num_items=20)
    with pytest.warns(UserWarning, match='fewer than 3'):
        split = data.leave_one_out()
    users = [u for u, s in enumerate(lists) if len(s) >= 3]
    assert split.valid_users.tolist() == users
    assert split.valid_target.tolist() == [lists[u][-2] for u in users]
    assert split.test_target.tolist() == [lists[u][-1] for u in users]
    for u, s in enumerate(lists):
        expect = s[:-2] if len(s) >= 3 else s
        assert split.train.sequence(u).tolist() == expect
    assert split.full is data


def test_padded_and_examples_match_naive():
    lists = random_lists(seed=1, min_len=2)
    data = SequenceData.from_lists(lists, num_items=20)
    users = torch.tensor([3, 0, 7, 3])
    end = torch.tensor([2, len(lists[0]), 1, len(lists[3])])
    seq, lengths = data.padded(users, end, max_len=4)
    for row, (u, e) in enumerate(zip(users.tolist(), end.tolist())):
        window = lists[u][:e][-4:]
        assert lengths[row] == len(window)
        assert seq[row].tolist() == window + [-1] * (seq.size(1) - len(window))
    u, pos, target = data.next_item_examples()
    naive = [(uu, p, s[p]) for uu, s in enumerate(lists)
             for p in range(1, len(s))]
    assert list(zip(u.tolist(), pos.tolist(), target.tolist())) == naive


def test_training_windows_predict_each_item_once():
    lists = random_lists(seed=2, min_len=1, max_len=23)
    data = SequenceData.from_lists(lists, num_items=20)
    users, end = training_windows(data, max_len=5)
    predicted = []
    for u, e in zip(users.tolist(), end.tolist()):
        start = max(0, e - 6)
        predicted += [(u, p) for p in range(start + 1, e)]
    naive = [(u, p) for u, s in enumerate(lists) for p in range(1, len(s))]
    assert sorted(predicted) == naive


def test_from_interactions_sorts_by_time_then_item():
    g = torch.Generator().manual_seed(0)
    users = torch.randint(0, 5, (40, ), generator=g)
    items = torch.randint(0, 9, (40, ), generator=g)
    times = torch.randint(0, 4, (40, ), generator=g).double()
    data = SequenceData.from_interactions(users, items, times, 6, 9)
    for u in range(6):
        rows = sorted((float(t), int(i)) for uu, i, t in
                      zip(users, items, times) if int(uu) == u)
        assert data.sequence(u).tolist() == [i for _, i in rows]
    assert data.lengths[5] == 0


def test_bad_sequences():
    with pytest.raises(ValueError, match=r'item ids must lie in \[0, 3\)'):
        SequenceData.from_lists([[0, 3]], num_items=3)
    with pytest.raises(ValueError, match='ptr must rise'):
        SequenceData(torch.tensor([0, 3]), torch.tensor([1, 2]), 4)
    with pytest.raises(ValueError, match='user 1 are not in time order'):
        SequenceData(torch.tensor([0, 2, 4]), torch.tensor([0, 1, 2, 3]), 4,
                     timestamps=torch.tensor([1., 2., 5., 4.]))
    with pytest.raises(TypeError, match='integer'):
        SequenceData(torch.tensor([0, 1]), torch.tensor([0.5]), 4)
    with pytest.raises(ValueError, match='user 1 has an empty sequence'):
        SequenceData.from_lists([[0, 1, 2], []], num_items=3).leave_one_out()


def test_read_sequences(tmp_path):
    path = tmp_path / 'Beauty.txt.gz'
    with gzip.open(path, 'wt') as f:
        f.write('1 3 1 2\n2 2 4 1 3\n')
    data = read_sequences(str(path))
    assert data.num_users == 2 and data.num_items == 4
    assert data.sequence(1).tolist() == [1, 3, 0, 2]  # 1-based -> 0-based
    bad = tmp_path / 'bad.txt'
    bad.write_text('1 3 0 2\n')
    with pytest.raises(ValueError, match=r'bad.txt:1: item id 0 is below'):
        read_sequences(str(bad))
    bad.write_text('1 3 x\n')
    with pytest.raises(ValueError, match='bad.txt:1: ids must be integers'):
        read_sequences(str(bad))
    bad.write_text('1 3\n7\n')
    with pytest.raises(ValueError, match='bad.txt:2: user 7 has no items'):
        read_sequences(str(bad))
    (tmp_path / 'seq-s3rec').mkdir()
    path.rename(tmp_path / 'seq-s3rec' / 'Beauty.txt.gz')
    assert load_sequences('beauty', str(tmp_path)).num_users == 2
    with pytest.raises(FileNotFoundError, match='Toys_and_Games'):
        load_sequences('toys', str(tmp_path))
    with pytest.raises(ValueError, match='unknown data set'):
        load_sequences('nope', str(tmp_path))


@pytest.mark.dataset
def test_s3rec_files(shared_data):
    sizes = {'beauty': (22363, 12101, 198502), 'toys': (19412, 11924, 167597)}
    for name, (users, items, events) in sizes.items():
        data = load_sequences(name, str(shared_data))
        assert (data.num_users, data.num_items, data.num_events) == \
            (users, items, events)
        assert int(data.lengths.min()) >= 5


def rated_data(seed=4, num_users=12):
    rng = random.Random(seed)
    users, items, times, ratings = [], [], [], []
    for u in range(num_users):
        t = 1_600_000_000 + rng.randrange(10 ** 6)
        for _ in range(rng.randint(1, 30)):
            t += rng.choice([0, 5, 3600, 90_000, 10 ** 6])
            users.append(u)
            items.append(rng.randrange(15))
            times.append(t)
            ratings.append(rng.randint(1, 5))
    return users, items, times, ratings


def naive_order(users, items, times, ratings):
    # Grouped by user, by time, ties by item id (stable): the documented
    # order of SequenceData.from_interactions.
    rows = sorted(zip(users, items, times, ratings),
                  key=lambda e: (e[0], e[2], e[1]))
    return [list(col) for col in zip(*rows)]


def test_context_features_match_datetime():
    import datetime
    import math
    users, items, times, ratings = rated_data()
    data = SequenceData.from_interactions(
        torch.tensor(users), torch.tensor(items), torch.tensor(times), 12,
        15, ratings=torch.tensor(ratings))
    ctx = data.context()
    assert ctx.shape == (len(users), 7)
    users, items, times, ratings = naive_order(users, items, times, ratings)
    assert data.items.tolist() == items
    for e, (u, t, r) in enumerate(zip(users, times, ratings)):
        when = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        hour = when.hour + when.minute / 60 + when.second / 3600
        day = when.weekday() + hour / 24
        gap = t - times[e - 1] if e and users[e - 1] == u else 0
        want = [r / 5, float(r <= 2),
                math.log1p(gap / 3600) / math.log1p(8760),
                math.sin(2 * math.pi * hour / 24),
                math.cos(2 * math.pi * hour / 24),
                math.sin(2 * math.pi * day / 7),
                math.cos(2 * math.pi * day / 7)]
        assert ctx[e].tolist() == pytest.approx(want, abs=1e-5)
    assert data.context(['skip']).view(-1).bool().tolist() == \
        [r <= 2 for r in ratings]
    with pytest.raises(ValueError, match='unknown feature'):
        data.context(['mood'])
    plain = SequenceData.from_lists([[0, 1], [2]], num_items=3)
    with pytest.raises(ValueError, match='need ratings'):
        plain.context()
    with pytest.raises(ValueError, match='6 ratings for 3 events'):
        SequenceData(plain.ptr, plain.items, 3, ratings=torch.ones(6))


def test_values_padded_future_and_horizon_split_match_naive():
    users, items, times, ratings = rated_data(seed=5, num_users=20)
    data = SequenceData.from_interactions(
        torch.tensor(users), torch.tensor(items), torch.tensor(times), 20,
        15, ratings=torch.tensor(ratings))
    users, items, times, ratings = naive_order(users, items, times, ratings)
    seqs = [[(i, r) for uu, i, r in zip(users, items, ratings) if uu == u]
            for u in range(20)]
    horizon = 3
    with pytest.warns(UserWarning, match='not evaluated'):
        split = data.horizon_split(horizon)
    ok = [u for u in range(20) if len(seqs[u]) >= 2 * horizon + 1]
    assert split.valid_users.tolist() == ok == split.test_users.tolist()
    assert split.valid_end.tolist() == [len(seqs[u]) - 6 for u in ok]
    assert split.test_end.tolist() == [len(seqs[u]) - 3 for u in ok]
    for u in range(20):
        n = len(seqs[u]) - 6 if u in ok else len(seqs[u])
        assert split.train.sequence(u).tolist() == [i for i, _ in
                                                    seqs[u][:n]]
        assert split.train.ratings[split.train.ptr[u]:split.train.ptr[
            u + 1]].tolist() == [r for _, r in seqs[u][:n]]
    fut = data.future(split.test_users, split.valid_end, 5, data.skips())
    for row, u in enumerate(ok):
        window = seqs[u][len(seqs[u]) - 6:len(seqs[u]) - 1]
        want = [i if r > 2 else -1 for i, r in window]
        assert fut[row].tolist() == want
    vals = data.values_padded(data.ratings, split.test_users,
                              split.test_end, max_len=4, pad=-9)
    seq, lengths = data.padded(split.test_users, split.test_end, max_len=4)
    for row, u in enumerate(ok):
        window = seqs[u][:len(seqs[u]) - 3][-4:]
        assert vals[row, :len(window)].tolist() == [r for _, r in window]
        assert bool((vals[row, len(window):] == -9).all())
        assert seq[row, :len(window)].tolist() == [i for i, _ in window]
    ctx = data.values_padded(data.context(), split.test_users,
                             split.test_end, max_len=4)
    assert ctx.shape == (len(ok), 4, 7)
    with pytest.raises(ValueError, match='horizon must be >= 1'):
        data.horizon_split(0)
    with pytest.raises(ValueError, match='no user has'):
        data.horizon_split(100)
