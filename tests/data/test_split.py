import math
import warnings
from collections import Counter, defaultdict

import pytest
import torch

from pyg_recsys.data import (
    InteractionGraph,
    leave_one_out,
    random_split,
    temporal_split,
)


def make_pairs(num_users=40, num_items=200, seed=0):
    r"""Unique pairs; user k has k % 13 items (some have 0, 1, 2, 3...)."""
    gen = torch.Generator().manual_seed(seed)
    users, items = [], []
    for u in range(num_users):
        n = u % 13
        users += [u] * n
        items += torch.randperm(num_items, generator=gen)[:n].tolist()
    perm = torch.randperm(len(users), generator=gen)  # interleave users
    return torch.tensor([users, items])[:, perm]


def as_list(pairs):
    return list(zip(*pairs.tolist()))


def per_user(pairs):
    out = defaultdict(list)
    for u, i in as_list(pairs):
        out[u].append(i)
    return out


def expected_sizes(n, ratios=(0.8, 0.1, 0.1)):
    r"""The documented rule, written out per user."""
    total = sum(ratios)
    rv, rt = ratios[1] / total, ratios[2] / total
    nv, nt = math.floor(rv * n + 1e-9), math.floor(rt * n + 1e-9)
    if n >= 2 and rt > 0 and nt == 0:
        nt = 1
    if n >= 3 and rv > 0 and nv == 0:
        nv = 1
    nv = min(nv, n - nt)
    return n - nv - nt, nv, nt


def check_partition(pairs, splits):
    r"""Disjoint, union = input, every part in input order."""
    everything = as_list(pairs)
    seen = []
    for part in splits:
        assert part.dtype == torch.long and part.dim() == 2
        assert part.size(0) == 2
        seen += as_list(part)
        pos = [everything.index(p) for p in as_list(part)]
        assert pos == sorted(pos)
    assert Counter(seen) == Counter(everything)


# ------------------------------------------------------------------ random
@pytest.mark.parametrize('ratios', [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2),
                                    (8, 1, 1), (0.7, 0.0, 0.3),
                                    (0.5, 0.5, 0.0)])
def test_random_split_partition_and_ratios(ratios):
    pairs = make_pairs()
    splits = random_split(pairs, 40, ratios, seed=1)
    check_partition(pairs, splits)
    counts = [per_user(p) for p in splits]
    for u, items in per_user(pairs).items():
        sizes = tuple(len(c.get(u, [])) for c in counts)
        assert sizes == expected_sizes(len(items), ratios), (u, len(items))


def test_random_split_documented_small_cases():
    pairs = torch.tensor([[0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
                          [0, 0, 1, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    train, valid, test = random_split(pairs, 5)
    sizes = [[int((p[0] == u).sum()) for p in (train, valid, test)]
             for u in range(5)]
    assert sizes == [[1, 0, 0], [1, 0, 1], [1, 1, 1], [8, 1, 1], [0, 0, 0]]


def test_random_split_seeded():
    pairs = make_pairs(num_users=60, num_items=500)
    a = random_split(pairs, 60, seed=3)
    b = random_split(pairs, 60, seed=3)
    c = random_split(pairs, 60, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_random_split_large_is_fast_and_valid():
    gen = torch.Generator().manual_seed(0)
    num_users, num_items = 5000, 20000
    keys = torch.unique(torch.randint(num_users * num_items, (200000, ),
                                      generator=gen))
    keys = keys[torch.randperm(keys.numel(), generator=gen)]
    pairs = torch.stack([keys // num_items, keys % num_items])
    train, valid, test = random_split(pairs, num_users, seed=0)
    assert train.size(1) + valid.size(1) + test.size(1) == keys.numel()
    graph = InteractionGraph(num_users, num_items, train, valid, test)
    assert graph.train.size(1) == train.size(1)
    # Test and validation are ~10% each per user.
    deg = torch.bincount(pairs[0], minlength=num_users)
    deg_test = torch.bincount(test[0], minlength=num_users)
    big = deg >= 30
    ratio = deg_test[big].double() / deg[big]
    assert bool((ratio <= 0.1 + 1e-9).all()) and float(ratio.min()) > 0.06


def test_random_split_empty_input():
    train, valid, test = random_split(torch.empty(2, 0, dtype=torch.long), 3)
    assert train.shape == valid.shape == test.shape == (2, 0)


def test_random_split_duplicates_dropped_with_warning():
    pairs = torch.tensor([[0, 0, 0, 0, 1], [5, 6, 5, 7, 5]])
    with pytest.warns(UserWarning, match='1 repeated'):
        splits = random_split(pairs, 2)
    kept = sorted(p for part in splits for p in as_list(part))
    assert kept == [(0, 5), (0, 6), (0, 7), (1, 5)]
    # The first occurrence is the one kept (input order is preserved).
    InteractionGraph(2, 8, *splits)  # no leak between splits


@pytest.mark.parametrize('kwargs,error,match', [
    ({'pairs': torch.zeros(3, 4, dtype=torch.long)}, ValueError,
     r'shape \[2, E\]'),
    ({'pairs': torch.zeros(2, 4)}, TypeError, 'integer ids'),
    ({'pairs': torch.tensor([[0, -1], [0, 0]])}, ValueError, 'negative'),
    ({'pairs': torch.tensor([[0, 1], [0, -2]])}, ValueError, 'negative'),
    ({'pairs': torch.tensor([[0, 3], [0, 0]])}, ValueError,
     'user id 3 is out of range for num_users=3'),
    ({'num_users': 0}, ValueError, 'num_users'),
    ({'ratios': (0.8, 0.2)}, ValueError, 'three non-negative'),
    ({'ratios': (0.8, -0.1, 0.3)}, ValueError, 'three non-negative'),
    ({'ratios': (0, 0, 0)}, ValueError, 'positive sum'),
    ({'ratios': (0.8, float('nan'), 0.1)}, ValueError, 'non-negative'),
])
def test_random_split_bad_input(kwargs, error, match):
    args = {'pairs': torch.tensor([[0, 1], [0, 0]]), 'num_users': 3}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        random_split(**args)


# ---------------------------------------------------------------- temporal
def test_temporal_split_order():
    pairs = make_pairs(num_users=30)
    gen = torch.Generator().manual_seed(5)
    ts = torch.randint(0, 20, (pairs.size(1), ), generator=gen)  # many ties
    splits = temporal_split(pairs, ts, 30)
    check_partition(pairs, splits)
    time_of = {p: (int(t), p[1]) for p, t in zip(as_list(pairs), ts)}
    parts = [per_user(p) for p in splits]
    for u, items in per_user(pairs).items():
        sizes = tuple(len(part.get(u, [])) for part in parts)
        assert sizes == expected_sizes(len(items))
        keys = [[time_of[(u, i)] for i in part.get(u, [])] for part in parts]
        # Oldest to train, then valid, then test; ties broken by item id.
        for older, newer in zip(keys, keys[1:]):
            if older and newer:
                assert max(older) < min(newer)


def test_temporal_split_example_and_determinism():
    pairs = torch.tensor([[0] * 5 + [1] * 2, [4, 3, 2, 1, 0, 7, 8]])
    ts = torch.tensor([50., 10., 30., 30., 20., 2., 1.])
    train, valid, test = temporal_split(pairs, ts, 2, ratios=(0.6, 0.2, 0.2))
    assert as_list(train) == [(0, 3), (0, 1), (0, 0), (1, 8)]
    assert as_list(valid) == [(0, 2)]  # ts 30 tie: item 1 before item 2
    assert as_list(test) == [(0, 4), (1, 7)]
    again = temporal_split(pairs, ts, 2, ratios=(0.6, 0.2, 0.2))
    assert all(torch.equal(a, b) for a, b in zip((train, valid, test), again))


def test_temporal_split_duplicates_keep_earliest():
    pairs = torch.tensor([[0, 0, 0, 0], [1, 2, 1, 3]])
    ts = torch.tensor([9, 5, 1, 7])
    with pytest.warns(UserWarning, match='1 repeated'):
        train, valid, test = temporal_split(pairs, ts, 1)
    # (0, 1) is kept at time 1 (the third column), so it goes to train.
    assert as_list(train) == [(0, 1)]
    assert as_list(valid) == [(0, 2)] and as_list(test) == [(0, 3)]


def test_temporal_split_bad_timestamps():
    pairs = torch.tensor([[0, 0], [1, 2]])
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        temporal_split(pairs, torch.tensor([1, 2, 3]), 1)
    with pytest.raises(ValueError, match='NaN'):
        temporal_split(pairs, torch.tensor([1.0, float('nan')]), 1)


# ----------------------------------------------------------- leave-one-out
def test_leave_one_out_with_timestamps():
    pairs = make_pairs(num_users=30)
    gen = torch.Generator().manual_seed(2)
    ts = torch.randperm(pairs.size(1), generator=gen)  # distinct times
    train, valid, test = leave_one_out(pairs, 30, timestamps=ts)
    check_partition(pairs, (train, valid, test))
    time_of = {p: int(t) for p, t in zip(as_list(pairs), ts)}
    parts = [per_user(p) for p in (train, valid, test)]
    for u, items in per_user(pairs).items():
        n = len(items)
        by_time = sorted(items, key=lambda i: time_of[(u, i)])
        exp_test = by_time[-1:] if n >= 2 else []
        exp_valid = by_time[-2:-1] if n >= 3 else []
        assert parts[2].get(u, []) == exp_test
        assert parts[1].get(u, []) == exp_valid
        assert sorted(parts[0].get(u, [])) == sorted(
            by_time[:n - len(exp_test) - len(exp_valid)])


def test_leave_one_out_small_users_and_ties():
    pairs = torch.tensor([[0, 1, 1, 2, 2, 2], [9, 4, 3, 7, 5, 6]])
    ts = torch.tensor([0, 1, 1, 3, 3, 3])  # all tied within a user
    train, valid, test = leave_one_out(pairs, 4, timestamps=ts)
    assert as_list(train) == [(0, 9), (1, 3), (2, 5)]
    assert as_list(valid) == [(2, 6)]
    assert as_list(test) == [(1, 4), (2, 7)]


def test_leave_one_out_random():
    pairs = make_pairs(num_users=50)
    a = leave_one_out(pairs, 50, seed=0)
    check_partition(pairs, a)
    deg = torch.bincount(pairs[0], minlength=50)
    assert torch.equal(torch.bincount(a[2][0], minlength=50),
                       (deg >= 2).long())
    assert torch.equal(torch.bincount(a[1][0], minlength=50),
                       (deg >= 3).long())
    b = leave_one_out(pairs, 50, seed=0)
    c = leave_one_out(pairs, 50, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_leave_one_out_no_valid_when_all_small():
    pairs = torch.tensor([[0, 0, 1], [1, 2, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        train, valid, test = leave_one_out(pairs, 2)
    assert valid.shape == (2, 0)
    assert train.size(1) == 2 and test.size(1) == 1
    graph = InteractionGraph(2, 4, train, valid, test)
    assert graph.valid.size(1) == 0
