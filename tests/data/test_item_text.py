import gzip
import json

import pytest
import torch

from pyg_recsys.data import BPRSampler, InteractionGraph
from pyg_recsys.data.item_text import (
    cold_start_split,
    holdout_valid,
    load_item_records,
    ml100k_cold_start,
)


def small_graph():
    train = torch.tensor([[0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 3, 4]])
    valid = torch.tensor([[0, 2], [3, 1]])
    test = torch.tensor([[1, 2], [0, 3]])
    return InteractionGraph(3, 6, train, valid, test, name='toy')


def pairs(t):
    return sorted(map(tuple, t.t().tolist()))


def test_cold_start_split_moves_every_interaction_of_the_items():
    g = cold_start_split(small_graph(), torch.tensor([1, 3]))
    assert pairs(g.train) == [(0, 0), (0, 2), (2, 4)]
    assert g.valid.size(1) == 0
    assert pairs(g.test) == [(0, 1), (0, 3), (1, 0), (1, 1), (1, 3),
                             (2, 1), (2, 3)]
    assert g.name == 'toy-cold'
    with pytest.raises(ValueError, match='outside'):
        cold_start_split(small_graph(), torch.tensor([6]))
    with pytest.raises(ValueError, match='every training interaction'):
        cold_start_split(small_graph(), torch.arange(6))


def test_holdout_valid_one_item_per_user():
    g = holdout_valid(small_graph(), seed=3)
    before = small_graph()
    # Users 0 (3 items) and 1 (2 items) give one each; user 2 keeps its one.
    moved = set(pairs(g.valid)) - set(pairs(before.valid))
    assert sorted(u for u, _ in moved) == [0, 1]
    assert set(pairs(g.train)) | moved == set(pairs(before.train))
    assert pairs(g.test) == pairs(before.test)
    with pytest.raises(ValueError, match='min_items'):
        holdout_valid(small_graph(), min_items=1)


def test_sampler_negative_pool():
    g = small_graph()
    pool = torch.tensor([0, 1, 2, 3, 4])  # item 5 is never a negative
    s = BPRSampler(g, negative_items=pool, seed=0)
    users = torch.zeros(4000, dtype=torch.long)
    neg = s.negatives(users)
    # User 0's positives are 0, 1, 2: negatives are 3 or 4 only.
    assert set(neg.tolist()) == {3, 4}
    free = BPRSampler(g, seed=0).negatives(users)
    assert set(free.tolist()) == {3, 4, 5}
    with pytest.raises(ValueError, match='no negative'):
        BPRSampler(g, negative_items=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='negative_items'):
        BPRSampler(g, negative_items=torch.tensor([7]))


def test_mind_records_from_a_user_folder(tmp_path):
    folder = tmp_path / 'mind-reclm'
    folder.mkdir()
    rows = [{'item': 1, 'cate': 'news', 'title': 'B'},
            {'item': 0, 'cate': 'sports', 'title': 'A'}]
    with gzip.open(folder / 'items.jsonl.gz', 'wt') as f:
        f.write('\n'.join(json.dumps(r) for r in rows) + '\n')
    with pytest.warns(UserWarning, match='3825 of 3827'):
        recs = load_item_records('mind-reclm', str(tmp_path))
    assert recs[0] == {'cate': 'sports', 'title': 'A'} and recs[5] == {}
    with gzip.open(folder / 'items.jsonl.gz', 'wt') as f:
        f.write('{"title": "no id"}\n')
    with pytest.raises(ValueError, match='line 1'):
        load_item_records('mind-reclm', str(tmp_path))
    with pytest.raises(ValueError, match='no item text'):
        load_item_records('gowalla', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='items.jsonl'):
        load_item_records('mind-reclm', str(tmp_path / 'elsewhere'))


def test_ml100k_u_item(tmp_path, monkeypatch):
    folder = tmp_path / 'ml-100k'
    folder.mkdir()
    flags = ['0'] * 19
    flags[3] = flags[5] = '1'  # Animation, Comedy
    (folder / 'u.item').write_text(
        '1|Toy Story (1995)|01-Jan-1995||http://x|' + '|'.join(flags) + '\n',
        encoding='latin-1')
    monkeypatch.setenv('PYG_RECSYS_HOME', str(tmp_path / 'cache'))
    with pytest.warns(UserWarning, match='1681 of 1682'):
        recs = load_item_records('ml-100k', str(tmp_path))
    assert recs[0] == {'title': 'Toy Story', 'year': '1995',
                       'genres': ['Animation', 'Comedy']}


@pytest.mark.dataset
def test_real_mind_and_ml100k_text(shared_data):
    if not (shared_data / 'mind-reclm').is_dir():
        pytest.skip('mind-reclm not found')
    recs = load_item_records('mind-reclm', str(shared_data))
    assert len(recs) == 3827 and all(r.get('title') for r in recs)
    graph, cold = ml100k_cold_start(str(shared_data))
    assert cold.numel() == 168
    records = load_item_records('ml-100k', str(shared_data))
    years = [int(records[i]['year']) for i in cold.tolist()]
    warm_years = [int(r['year']) for i, r in enumerate(records)
                  if r.get('year', '').isdigit() and i not in set(
                      cold.tolist())]
    assert min(years) >= max(warm_years) - 0  # the newest movies
    item_in = torch.zeros(1682, dtype=torch.bool)
    item_in[graph.train[1]] = True
    item_in[graph.valid[1]] = True
    assert not bool(item_in[cold].any())
    assert graph.train.size(1) + graph.valid.size(1) + \
        graph.test.size(1) == 100000
