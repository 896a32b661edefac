import json

import pytest
import torch

from pyg_recsys.text import item_texts, load_profiles, mean_of_items, user_profiles


def test_item_texts_join_fields():
    recs = [{'cate': 'news', 'sub_cate': 'news_us', 'title': 'A',
             'abstract': ''},
            {'title': 'B', 'genres': ['Drama', 'War']}, {}]
    assert item_texts(recs) == ['news. news us. A', 'Drama, War. B', '']
    assert item_texts(recs, fields=('title', )) == ['A', 'B', '']
    with pytest.raises(ValueError, match='none of the fields'):
        item_texts([{'x': 1}])


def test_user_profiles_from_csr():
    rowptr = torch.tensor([0, 3, 3, 4])
    col = torch.tensor([0, 1, 2, 1])
    texts = ['a', 'b', 'c']
    assert user_profiles(rowptr, col, texts, max_items=2) == ['b | c', '',
                                                              'b']
    assert user_profiles(rowptr, col, texts, max_items=2, recent=False,
                         template='Read: {items}.') == ['Read: a | b.', '',
                                                        'Read: b.']
    with pytest.raises(ValueError, match='outside'):
        user_profiles(rowptr, torch.tensor([0, 1, 5, 1]), texts)
    with pytest.raises(ValueError, match="'{items}'"):
        user_profiles(rowptr, col, texts, template='no field')


def test_load_profiles_formats(tmp_path):
    with pytest.warns(UserWarning, match='1 of 3 users have no profile'):
        out = load_profiles({0: 'likes sport', '2': 'likes films'}, 3)
    assert out == ['likes sport', '', 'likes films']
    path = tmp_path / 'p.json'
    path.write_text(json.dumps(['x', 'y']))
    assert load_profiles(str(path), 2) == ['x', 'y']
    path = tmp_path / 'p.jsonl'
    path.write_text('{"user": 1, "profile": "b"}\n{"id": 0, "text": "a"}\n')
    assert load_profiles(str(path), 2) == ['a', 'b']
    path.write_text('{"user": 1}\n')
    with pytest.raises(ValueError, match='line 1'):
        load_profiles(str(path), 2)
    with pytest.raises(ValueError, match='outside'):
        load_profiles({5: 'a'}, 2)
    with pytest.raises(FileNotFoundError):
        load_profiles(str(tmp_path / 'missing.json'), 2)


def test_mean_of_items_dense_reference():
    rowptr = torch.tensor([0, 2, 2, 3])
    col = torch.tensor([0, 2, 1])
    vec = torch.randn(3, 5)
    out = mean_of_items(rowptr, col, vec, normalize=False)
    torch.testing.assert_close(out[0], (vec[0] + vec[2]) / 2)
    torch.testing.assert_close(out[1], torch.zeros(5))
    torch.testing.assert_close(out[2], vec[1])
    unit = mean_of_items(rowptr, col, vec)
    torch.testing.assert_close(unit[0], out[0] / out[0].norm())
