r"""Item metadata (text) of the data sets that have it, and the splits of
text-aware recommendation: items held out of training (cold start) and a
validation split carved from training.

* :obj:`mind-reclm`: MIND news items as in RecLM's split (category,
  subcategory, title, abstract), from :obj:`items.jsonl[.gz]`;
* :obj:`ml-100k`: MovieLens-100K titles, release years and genres, from
  RecBole's :obj:`ml-100k.item` or GroupLens' :obj:`u.item`.
"""
import gzip
import json
import os
import warnings
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.data.datasets import (
    ML100K_NUM_ITEMS,
    _find,
    _missing,
    get_cache_dir,
    get_data_root,
    load_dataset,
)
from pyg_recsys.data.graph import InteractionGraph
from pyg_recsys.data.io import read_recbole_atomic

ML100K_GENRES = ('unknown', 'Action', 'Adventure', 'Animation', "Children's",
                 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy',
                 'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance',
                 'Sci-Fi', 'Thriller', 'War', 'Western')


def load_item_records(name: str, root: Optional[str] = None
                      ) -> List[Dict[str, object]]:
    r"""The metadata record of every item of data set :obj:`name`
    (:obj:`'mind-reclm'` or :obj:`'ml-100k'`), as a list indexed by the
    data set's item ids. An item missing from the file gets :obj:`{}` (and
    so the empty text) with a warning.

    Raises:
        ValueError: For another data set, or a malformed file.
        FileNotFoundError: If the metadata file is missing.
    """
    key = name.lower()
    root = get_data_root(root)
    if key == 'mind-reclm':
        return _mind_items(os.path.join(root, 'mind-reclm'))
    if key == 'ml-100k':
        folders = [os.path.join(root, 'ml-100k'),
                   os.path.join(get_cache_dir(), 'ml-100k')]
        return _ml100k_items(folders)
    raise ValueError(f"load_item_records: no item text for '{name}' "
                     f"(available: 'mind-reclm', 'ml-100k')")


def _fill(name: str, records: Dict[int, Dict[str, object]],
          num_items: int) -> List[Dict[str, object]]:
    out: List[Dict[str, object]] = [{} for _ in range(num_items)]
    for i, rec in records.items():
        if not 0 <= i < num_items:
            raise ValueError(f"load_item_records: '{name}' has item id {i} "
                             f"outside [0, {num_items})")
        out[i] = rec
    missing = num_items - len(records)
    if missing:
        warnings.warn(f"load_item_records: {missing} of {num_items} '{name}' "
                      f"items have no record; their text is ''")
    return out


def _mind_items(folder: str) -> List[Dict[str, object]]:
    path = _find(folder, 'items.jsonl')
    if path is None:
        raise _missing('mind-reclm', folder, 'items.jsonl[.gz] (one JSON '
                       'object per item: item, cate, sub_cate, title, '
                       'abstract)')
    opener = gzip.open if path.endswith('.gz') else open
    records: Dict[int, Dict[str, object]] = {}
    with opener(path, 'rt', encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                i = int(rec.pop('item'))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ValueError(f"{path} line {lineno}: expected a JSON "
                                 f"object with an integer 'item'") from None
            records[i] = rec
    from pyg_recsys.data.datasets import _LIGHTGCN_DATASETS
    return _fill('mind-reclm', records, _LIGHTGCN_DATASETS['mind-reclm'][1])


def _ml100k_items(folders: List[str]) -> List[Dict[str, object]]:
    for folder in folders:
        path = os.path.join(folder, 'ml-100k.item')
        if os.path.isfile(path):
            cols = read_recbole_atomic(path)
            for field in ('item_id', 'movie_title'):
                if field not in cols:
                    raise ValueError(f"{path}: no '{field}' field")
            years = cols.get('release_year', [''] * len(cols['item_id']))
            genres = cols.get('class', [[]] * len(cols['item_id']))
            records = {}
            for iid, title, year, genre in zip(cols['item_id'],
                                               cols['movie_title'], years,
                                               genres):
                records[int(iid) - 1] = {
                    'title': ' '.join(title), 'year': str(year),
                    'genres': list(genre)}
            return _fill('ml-100k', records, ML100K_NUM_ITEMS)
        path = os.path.join(folder, 'u.item')
        if os.path.isfile(path):
            return _fill('ml-100k', _read_u_item(path), ML100K_NUM_ITEMS)
    raise FileNotFoundError(
        f"ml-100k item text not found: searched {', '.join(folders)} for "
        f"ml-100k.item (RecBole) or u.item (GroupLens)")


def _read_u_item(path: str) -> Dict[int, Dict[str, object]]:
    records = {}
    with open(path, encoding='latin-1') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip('\n').split('|')
            if len(parts) != 5 + len(ML100K_GENRES):
                raise ValueError(f"{path} line {lineno}: expected "
                                 f"{5 + len(ML100K_GENRES)} '|'-separated "
                                 f"fields, got {len(parts)}")
            title = parts[1]
            year = parts[2][-4:] if parts[2] else ''
            if title.endswith(')') and title[-6:-5] == '(':
                title = title[:-7].strip()  # "Toy Story (1995)"
            genres = [g for g, flag in zip(ML100K_GENRES, parts[5:])
                      if flag.strip() == '1']
            records[int(parts[0]) - 1] = {'title': title, 'year': year,
                                          'genres': genres}
    return records


# ----------------------------------------------------------------------------
def cold_start_split(graph: InteractionGraph, items: Tensor,
                     name: Optional[str] = None) -> InteractionGraph:
    r"""Holds :obj:`items` out of training: all their interactions, in any
    split, move to :obj:`test`; the other splits keep the rest. Items that
    only occur in :obj:`test` are cold in this sense already (e.g. MIND's
    RecLM split), so this is for data sets that have none.

    Raises:
        ValueError: If :obj:`items` holds ids out of range, or nothing is
            left to train on.
    """
    items = torch.as_tensor(items, dtype=torch.long).view(-1)
    if items.numel() and (int(items.min()) < 0
                          or int(items.max()) >= graph.num_items):
        raise ValueError(f"cold_start_split: item ids outside "
                         f"[0, {graph.num_items})")
    cold = torch.zeros(graph.num_items, dtype=torch.bool)
    cold[items] = True
    kept, moved = {}, []
    for split in ('train', 'valid', 'test'):
        pairs = getattr(graph, split)
        if pairs is None:
            kept[split] = None
            continue
        is_cold = cold[pairs[1]]
        kept[split] = pairs[:, ~is_cold]
        moved.append(pairs[:, is_cold])
    test = torch.cat(([kept['test']] if kept['test'] is not None else [])
                     + moved, dim=1)
    if kept['train'].size(1) == 0:
        raise ValueError("cold_start_split: every training interaction is "
                         "with a held-out item")
    return InteractionGraph(graph.num_users, graph.num_items, kept['train'],
                            kept['valid'], test,
                            name=name or f'{graph.name}-cold',
                            user_ids=graph.user_ids, item_ids=graph.item_ids)


def ml100k_cold_start(root: Optional[str] = None, fraction: float = 0.1,
                      seed: int = 0) -> Tuple[InteractionGraph, Tensor]:
    r"""MovieLens-100K with an item cold-start split: the newest
    :obj:`fraction` of movies by release year (ties: higher id first, so
    that the held-out set is fixed) get no training or validation
    interaction; the other interactions are split 80/10/10 at random per
    user (seed :obj:`seed`).

    Returns:
        (InteractionGraph, torch.Tensor): the graph and the held-out item
        ids (ascending).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"ml100k_cold_start: fraction must be in (0, 1), "
                         f"got {fraction}")
    records = load_item_records('ml-100k', root)
    years = torch.tensor([int(r['year']) if str(r.get('year', '')).isdigit()
                          else -1 for r in records])
    ids = torch.arange(len(records))
    # Newest first; among equal years the higher id first.
    order = torch.argsort(years * len(records) + ids, descending=True)
    cold = order[:int(round(fraction * len(records)))].sort().values
    graph = load_dataset('ml-100k', root, seed=seed)
    return cold_start_split(graph, cold, name='ml-100k-cold'), cold


def holdout_valid(graph: InteractionGraph, seed: int = 0,
                  min_items: int = 2) -> InteractionGraph:
    r"""Carves a validation split from training: one random training item
    of every user with at least :obj:`min_items` of them moves to
    :obj:`valid` (for model selection where the published split has none;
    an existing validation split is kept and extended).
    """
    if min_items < 2:
        raise ValueError(f"holdout_valid: min_items must be at least 2 (a "
                         f"user keeps one training item), got {min_items}")
    train = graph.train
    counts = torch.bincount(train[0], minlength=graph.num_users)
    gen = torch.Generator().manual_seed(seed)
    start = torch.cumsum(counts, 0) - counts  # pairs are sorted by user
    users = (counts >= min_items).nonzero().view(-1)
    pick = start[users] + (torch.rand(users.numel(), generator=gen)
                           * counts[users]).long().clamp(
        max=counts[users] - 1)
    move = torch.zeros(train.size(1), dtype=torch.bool)
    move[pick] = True
    valid = train[:, move]
    if graph.valid is not None:
        valid = torch.cat([graph.valid, valid], dim=1)
    return InteractionGraph(graph.num_users, graph.num_items, train[:, ~move],
                            valid, graph.test, name=graph.name,
                            user_ids=graph.user_ids, item_ids=graph.item_ids)
