r"""A user's own interactions as an :class:`InteractionGraph`: a CSV / TSV
table with named columns, or a folder of LightGCN-format files."""
import csv
import io
import math
import os
from typing import Optional, Sequence

import torch

from pyg_recsys.data.graph import InteractionGraph
from pyg_recsys.data.io import _read_lines, read_lightgcn, remap_ids
from pyg_recsys.data.split import leave_one_out, random_split, temporal_split

SPLITS = ('random', 'temporal', 'loo')


def _open_text(path: str):
    return io.StringIO('\n'.join(_read_lines(path)), newline='')


def _number(path: str, line: int, column: str, token: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"{path}:{line}: column '{column}' holds "
                         f"{token!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{line}: column '{column}' holds {token!r}, "
                         f"not a finite number")
    return value


def load_interactions(path: str, user_col: str = 'user',
                      item_col: str = 'item',
                      rating_col: Optional[str] = None,
                      min_rating: Optional[float] = None,
                      time_col: Optional[str] = None,
                      sep: Optional[str] = None, split: str = 'random',
                      ratios: Sequence[float] = (0.8, 0.1, 0.1),
                      seed: int = 0,
                      name: Optional[str] = None) -> InteractionGraph:
    r"""Reads an interaction table whose first line names its columns and
    splits it per user into train / valid / test.

    User and item ids may be any strings (or integers); they are mapped to
    :obj:`0..U-1` and :obj:`0..I-1` (see :func:`~pyg_recsys.data.remap_ids`)
    and kept as the graph's :obj:`user_ids` / :obj:`item_ids`, so that
    recommendations can be given back in raw ids. A pair that occurs more
    than once is one interaction.

    Args:
        path (str): The file; :obj:`.gz` is decompressed.
        user_col (str, optional): The user column. (default: :obj:`'user'`)
        item_col (str, optional): The item column. (default: :obj:`'item'`)
        rating_col (str, optional): A rating column, needed by
            :obj:`min_rating`. (default: :obj:`None`)
        min_rating (float, optional): Keep rows rated at least this.
            (default: :obj:`None`, keep all)
        time_col (str, optional): A numeric time column, needed by
            :obj:`split='temporal'` and used by :obj:`'loo'`.
            (default: :obj:`None`)
        sep (str, optional): The delimiter; by default a tab for
            :obj:`.tsv` files, else a comma. (default: :obj:`None`)
        split (str, optional): :obj:`'random'` (per user, by
            :obj:`ratios`), :obj:`'temporal'` (each user's latest
            interactions to valid and test, by :obj:`ratios`) or
            :obj:`'loo'` (leave one out; by time when :obj:`time_col` is
            given). (default: :obj:`'random'`)
        ratios (Sequence[float], optional): Train, valid and test shares.
            (default: :obj:`(0.8, 0.1, 0.1)`)
        seed (int, optional): Seed of random splits. (default: :obj:`0`)
        name (str, optional): A display name. (default: the file name)

    Raises:
        ValueError: For an unknown split, a missing column (naming the
            columns the file has), a short row, an empty id, a rating or
            time that is not a finite number (naming :obj:`path:line`),
            :obj:`min_rating` without :obj:`rating_col`, or a table with no
            interactions left.
        FileNotFoundError: If :obj:`path` does not exist.
    """
    path = os.fspath(path)
    if split not in SPLITS:
        raise ValueError(f"load_interactions: split must be one of {SPLITS}, "
                         f"got '{split}'")
    if split == 'temporal' and time_col is None:
        raise ValueError("load_interactions: split='temporal' needs a time "
                         "column (time_col)")
    if min_rating is not None and rating_col is None:
        raise ValueError("load_interactions: min_rating needs a rating "
                         "column (rating_col)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no interaction file at '{path}'")
    if sep is None:
        stem = path[:-3] if path.endswith('.gz') else path
        sep = '\t' if stem.endswith('.tsv') else ','
    reader = csv.reader(_open_text(path), delimiter=sep)
    header = next(reader, None)
    while header is not None and not any(h.strip() for h in header):
        header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: empty file (expected a header line naming "
                         f"the columns)")
    header = [h.strip() for h in header]
    wanted = {'user': user_col, 'item': item_col, 'rating': rating_col,
              'time': time_col}
    index = {}
    for role, col in wanted.items():
        if col is None:
            continue
        if col not in header:
            raise ValueError(f"{path}: no column '{col}' for the {role}s "
                             f"(the header has: {', '.join(header)})")
        index[role] = header.index(col)
    width = max(index.values()) + 1
    users, items, ratings, times = [], [], [], []
    for row in reader:
        line = reader.line_num
        if not row or not any(f.strip() for f in row):
            continue
        if len(row) < width:
            raise ValueError(f"{path}:{line}: {len(row)} fields, expected "
                             f"{len(header)} as in the header")
        u, i = row[index['user']].strip(), row[index['item']].strip()
        for what, tok in (('user', u), ('item', i)):
            if not tok:
                raise ValueError(f"{path}:{line}: empty {what} id")
        if 'rating' in index:
            r = _number(path, line, rating_col, row[index['rating']].strip())
            if min_rating is not None and r < min_rating:
                continue
            ratings.append(r)
        if 'time' in index:
            times.append(_number(path, line, time_col,
                                 row[index['time']].strip()))
        users.append(u)
        items.append(i)
    if not users:
        raise ValueError(f"{path}: no interactions"
                         + (f" rated at least {min_rating}"
                            if min_rating is not None else ""))
    user_index, user_ids = remap_ids(users)
    item_index, item_ids = remap_ids(items)
    pairs = torch.stack([user_index, item_index])
    num_users, num_items = len(user_ids), len(item_ids)
    timestamps = torch.tensor(times, dtype=torch.float64) if times else None
    if split == 'random':
        train, valid, test = random_split(pairs, num_users, ratios, seed)
    elif split == 'temporal':
        train, valid, test = temporal_split(pairs, timestamps, num_users,
                                            ratios)
    else:
        train, valid, test = leave_one_out(pairs, num_users, timestamps, seed)
    return InteractionGraph(num_users, num_items, train, valid, test,
                            name=name or os.path.basename(path),
                            user_ids=user_ids, item_ids=item_ids)


def load_lightgcn_folder(path: str,
                         name: Optional[str] = None) -> InteractionGraph:
    r"""Reads a folder of LightGCN-format files (one line per user: the user
    id, then its item ids; 0-based): :obj:`train.txt` and :obj:`test.txt`,
    optionally :obj:`valid.txt` (each may be :obj:`.gz`). The sizes are the
    largest ids plus one."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no folder at '{path}'")
    found = {}
    for split in ('train', 'valid', 'test'):
        for fname in (f'{split}.txt', f'{split}.txt.gz'):
            if os.path.isfile(os.path.join(path, fname)):
                found[split] = read_lightgcn(os.path.join(path, fname))
                break
    if 'train' not in found or 'test' not in found:
        raise FileNotFoundError(f"'{path}' needs train.txt and test.txt (and "
                                f"optionally valid.txt) in the LightGCN "
                                f"format")
    every = torch.cat([p for p in found.values()], dim=1)
    num_users = int(every[0].max()) + 1 if every.numel() else 0
    num_items = int(every[1].max()) + 1 if every.numel() else 0
    return InteractionGraph(num_users, num_items, found['train'],
                            found.get('valid'), found['test'],
                            name=name or os.path.basename(
                                os.path.normpath(path)))
