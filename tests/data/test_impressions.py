import math
import os

import pytest
import torch

from pyg_recsys.data.impressions import (
    Impressions,
    click_features,
    ml100k_impressions,
    read_ripplenet,
    ripplenet_split,
    temporal_split,
)

DATA = os.environ.get('PYG_RECSYS_DATA', os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'shared', 'data'))


def toy(seed=0, n=120, users=6):
    g = torch.Generator().manual_seed(seed)
    time = torch.sort(torch.randint(0, 40, (n, ), generator=g) * 1800).values
    return Impressions(torch.randint(0, users, (n, ), generator=g),
                       torch.randint(0, 9, (n, ), generator=g),
                       torch.randint(0, 2, (n, ), generator=g).float(), time,
                       users, 9)


def naive_features(imp, history):
    # Per impression, a loop over the user's impressions strictly before.
    rows = []
    for k in range(len(imp)):
        u, t = int(imp.user[k]), int(imp.time[k])
        earlier = [j for j in range(len(imp))
                   if int(imp.user[j]) == u and int(imp.time[j]) < t]
        last = earlier[-history:]
        pad = history - len(last)
        clicks = [0.0] * pad + [float(imp.label[j]) for j in last]
        mask = [0.0] * pad + [1.0] * len(last)
        gap = [0.0] * pad + [math.log1p((t - int(imp.time[j])) / 3600)
                             for j in last]
        m = len(earlier)
        c = sum(float(imp.label[j]) for j in earlier)
        since = math.log1p((t - int(imp.time[earlier[-1]])) / 3600) if m \
            else 0.0
        rows.append((clicks, mask, gap, [since, float(m > 0), math.log1p(m),
                                         (c + 1) / (m + 2)]))
    return rows


def test_features_equal_a_loop_over_earlier_events():
    imp = toy()
    feats = click_features(imp, history=4)
    for k, (clicks, mask, gap, user) in enumerate(naive_features(imp, 4)):
        assert feats['seq_click'][k].tolist() == clicks
        assert feats['seq_mask'][k].tolist() == mask
        torch.testing.assert_close(feats['seq_gap'][k],
                                   torch.tensor(gap, dtype=torch.float))
        torch.testing.assert_close(feats['user'][k],
                                   torch.tensor(user, dtype=torch.float))


def test_no_leak_from_the_future_or_the_same_second():
    imp = toy(seed=1)
    base = click_features(imp)
    # Flip every label at or after a time: features of impressions strictly
    # before it stay; so do those of impressions in that very second.
    cut = int(imp.time[60])
    later = imp.time >= cut
    flipped = Impressions(imp.user, imp.item,
                          torch.where(later, 1 - imp.label, imp.label),
                          imp.time, imp.num_users, imp.num_items)
    feats = click_features(flipped)
    same_or_before = imp.time <= cut
    for key in base:
        assert torch.equal(base[key][same_or_before],
                           feats[key][same_or_before]), key
    # ... and a feature that reads the past does change after the cut.
    assert not torch.equal(base['seq_click'][~same_or_before],
                           feats['seq_click'][~same_or_before])


def test_same_second_events_do_not_see_each_other():
    # User 0 at t = 0, then twice at t = 60: the later two see only the
    # first, whatever their own labels.
    def feats(labels):
        imp = Impressions(torch.tensor([0, 0, 0]), torch.tensor([0, 1, 2]),
                          torch.tensor(labels), torch.tensor([0, 60, 60]),
                          1, 3)
        return click_features(imp, history=2)
    a, b = feats([1.0, 0.0, 1.0]), feats([1.0, 1.0, 0.0])
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert a['seq_mask'].tolist() == [[0, 0], [0, 1], [0, 1]]


def test_time_features_are_cyclic():
    # 1970-01-05 was a Monday; 06:00 UTC is a quarter of the day.
    t = torch.tensor([4 * 86400 + 6 * 3600])
    imp = Impressions(torch.tensor([0]), torch.tensor([0]),
                      torch.tensor([1.0]), t, 1, 1)
    hs, hc, ds, dc = click_features(imp)['time'][0].tolist()
    assert hs == pytest.approx(1.0) and hc == pytest.approx(0.0, abs=1e-7)
    assert ds == pytest.approx(0.0, abs=1e-7) and dc == pytest.approx(1.0)


def test_bad_input_is_named():
    u, i = torch.tensor([0, 1]), torch.tensor([0, 1])
    with pytest.raises(ValueError, match='labels must be 0 or 1'):
        Impressions(u, i, torch.tensor([1.0, 2.0]), torch.tensor([1, 2]),
                    2, 2)
    with pytest.raises(ValueError, match='timestamps must be sorted'):
        Impressions(u, i, torch.tensor([1.0, 0.0]), torch.tensor([5, 2]),
                    2, 2)
    with pytest.raises(ValueError, match='NaN or infinity'):
        Impressions(u, i, torch.tensor([1.0, 0.0]),
                    torch.tensor([1.0, float('nan')]), 2, 2)
    with pytest.raises(ValueError, match='unknown user'):
        Impressions(torch.tensor([0, 5]), i, torch.tensor([1.0, 0.0]),
                    torch.tensor([1, 2]), 2, 2)
    with pytest.raises(ValueError, match='no timestamps'):
        click_features(Impressions(u, i, torch.tensor([1.0, 0.0]), None,
                                   2, 2))


def test_temporal_split_windows_are_ordered_and_cover_all():
    imp = toy(n=400)
    parts = temporal_split(imp)
    masks = [parts[k] for k in ('history', 'train', 'valid', 'test')]
    assert torch.equal(sum(m.long() for m in masks), torch.ones(400).long())
    for a, b in zip(masks, masks[1:]):
        assert int(imp.time[a].max()) < int(imp.time[b].min())
    with pytest.raises(ValueError, match='four positive fractions'):
        temporal_split(imp, (0.5, 0.5))


def test_ripplenet_split_is_their_numpy_draw():
    np = pytest.importorskip('numpy')
    n = 1000
    np.random.seed(555)  # their code, verbatim in effect
    valid = np.random.choice(n, size=int(n * 0.2), replace=False)
    left = set(range(n)) - set(valid)
    test = np.random.choice(list(left), size=int(n * 0.2), replace=False)
    train = sorted(left - set(test))
    a, b, c = ripplenet_split(n)
    assert a.tolist() == train and b.tolist() == valid.tolist()
    assert c.tolist() == test.tolist()


def test_read_ripplenet_errors(tmp_path):
    path = tmp_path / 'ratings_final.txt'
    path.write_text('0\t1\t1\n0\t2\n')
    with pytest.raises(ValueError, match=':2: expected 3 fields'):
        read_ripplenet(str(path))
    path.write_text('0\t1\t1\n1\t2\t3\n')
    with pytest.raises(ValueError, match='labels must be 0 or 1'):
        read_ripplenet(str(path))


@pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, 'ml-100k')),
                    reason='ml-100k not available')
def test_ml100k_impressions():
    imp = ml100k_impressions(DATA)
    assert len(imp) == 100000
    assert 0.5 < float(imp.label.mean()) < 0.6  # ratings >= 4: 55.4%
    assert bool((imp.time[1:] >= imp.time[:-1]).all())


@pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, 'book-crossing')),
                    reason='book-crossing not available')
def test_book_crossing_file():
    imp = read_ripplenet(os.path.join(DATA, 'book-crossing',
                                      'ratings_final.txt.gz'))
    assert len(imp) == 139746 and float(imp.label.mean()) == 0.5
