r"""Imperfect input end to end: file -> reader -> split -> InteractionGraph.

Each case is either a clear error or documented behaviour:

* a negative or non-integer id in a file: :class:`ValueError` with
  :obj:`path:line` (the readers);
* an id out of range for the data set size: :class:`ValueError` naming the
  split and the id (:class:`InteractionGraph`);
* a repeated pair: kept once, with a warning;
* a user without items (a line with only the user id, or an id never used):
  allowed, keeps its row and is simply absent from the pairs;
* a pair in two splits: :class:`ValueError` (a leak).
"""
import pytest
import torch

from pyg_recsys.data import InteractionGraph, random_split, read_lightgcn


def lightgcn(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return read_lightgcn(path)


def test_users_without_items(tmp_path):
    train = lightgcn(tmp_path, 'train.txt', '0 1 2\n1\n3 0\n')
    test = lightgcn(tmp_path, 'test.txt', '0 3\n1\n')
    graph = InteractionGraph(5, 4, train, test=test)
    assert graph.user_degree().tolist() == [2, 0, 0, 1, 0]
    rowptr, col = graph.csr('train')
    assert rowptr.tolist() == [0, 2, 2, 2, 3, 3]
    assert graph.norm_adj().shape == (9, 9)


def test_duplicates_kept_once(tmp_path):
    train = lightgcn(tmp_path, 'train.txt', '0 1 2 1\n0 2\n1 0\n')
    assert train.size(1) == 5  # the reader keeps the file as is
    with pytest.warns(UserWarning, match='2 repeated'):
        graph = InteractionGraph(2, 3, train)
    assert graph.train.tolist() == [[0, 0, 1], [1, 2, 0]]


def test_out_of_range_ids(tmp_path):
    train = lightgcn(tmp_path, 'train.txt', '0 1\n4 2\n')
    with pytest.raises(ValueError, match="'train' holds user id 4, out of "
                       "range for num_users=4"):
        InteractionGraph(4, 3, train)
    with pytest.raises(ValueError, match="item id 2, out of range for "
                       "num_items=2"):
        InteractionGraph(5, 2, train)
    with pytest.raises(ValueError, match='negative item id'):
        InteractionGraph(5, 3, torch.tensor([[0], [-1]]))


def test_negative_id_in_file(tmp_path):
    with pytest.raises(ValueError, match=r'train\.txt:2: negative id -4'):
        lightgcn(tmp_path, 'train.txt', '0 1\n-4 2\n')


def test_overlapping_splits(tmp_path):
    train = lightgcn(tmp_path, 'train.txt', '0 1 2\n1 0\n')
    test = lightgcn(tmp_path, 'test.txt', '1 0\n')
    with pytest.raises(ValueError, match="1 .* pairs are in both 'train' "
                       "and 'test' .*user 1, item 0"):
        InteractionGraph(2, 3, train, test=test)


def test_split_of_file_with_duplicates_has_no_leak(tmp_path):
    pairs = lightgcn(tmp_path, 'all.txt', '0 1 2 3 4 1 2\n1 0 1 2\n')
    with pytest.warns(UserWarning, match='2 repeated'):
        splits = random_split(pairs, 2, seed=0)
    graph = InteractionGraph(2, 5, *splits)
    total = sum(graph.split(s).size(1) for s in ('train', 'valid', 'test'))
    assert total == 7
