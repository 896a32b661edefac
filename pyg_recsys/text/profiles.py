r"""Profiles: the text that describes an item or a user.

Item text comes from metadata records (:func:`item_texts`); a user's profile
is templated from the items of their training history
(:func:`user_profiles`), or taken from profiles written elsewhere, e.g. by an
LLM (:func:`load_profiles`). Nothing here reaches the network.
"""
import gzip
import json
import os
import warnings
from typing import List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

# Field order of an item's text, when a record has these fields.
DEFAULT_FIELDS = ('cate', 'sub_cate', 'genres', 'title', 'year', 'abstract')


def item_texts(records: Sequence[Mapping[str, object]],
               fields: Optional[Sequence[str]] = None,
               separator: str = '. ') -> List[str]:
    r"""One text per item from its metadata record: the non-empty values of
    :obj:`fields`, in order, joined by :obj:`separator` (a list value, e.g.
    genres, is joined with commas). A record without any of the fields
    gives :obj:`''` (encoded as the zero vector).

    Args:
        records (Sequence[Mapping]): Record :obj:`i` describes item :obj:`i`.
        fields (Sequence[str], optional): The fields to use.
            (default: those of :obj:`DEFAULT_FIELDS` present in any record)
        separator (str, optional): Between fields. (default: :obj:`'. '`)
    """
    if fields is None:
        seen = set()
        for r in records:
            seen.update(r)
        fields = [f for f in DEFAULT_FIELDS if f in seen]
        if not fields:
            raise ValueError(f"item_texts: the records have none of the "
                             f"fields {DEFAULT_FIELDS}; pass fields=")
    out = []
    for r in records:
        parts = []
        for f in fields:
            v = r.get(f)
            if isinstance(v, (list, tuple)):
                v = ', '.join(str(x) for x in v)
            v = '' if v is None else str(v).strip()
            if v:
                parts.append(v.replace('_', ' ') if f in ('cate', 'sub_cate')
                             else v)
        out.append(separator.join(parts))
    return out


def user_profiles(rowptr: Tensor, col: Tensor, item_text: Sequence[str],
                  max_items: int = 10, template: str = '{items}',
                  separator: str = ' | ', recent: bool = True) -> List[str]:
    r"""Templated user profiles from the users' items: the texts of (at
    most) :obj:`max_items` of a user's items, joined by :obj:`separator`
    and put into :obj:`template` at :obj:`{items}`. A user without items
    gets :obj:`''`.

    Args:
        rowptr (torch.Tensor): CSR row pointer over users, :obj:`[U + 1]`
            (e.g. :obj:`graph.csr('train')[0]`).
        col (torch.Tensor): The items of each user, in the row's order.
        item_text (Sequence[str]): The text of each item (short texts such
            as titles make better profiles than full abstracts).
        max_items (int, optional): Items per profile. (default: :obj:`10`)
        template (str, optional): With an :obj:`{items}` field.
        separator (str, optional): Between items.
        recent (bool, optional): Keep the last :obj:`max_items` of a row
            (its most recent, when rows are in time order) rather than the
            first. (default: :obj:`True`)
    """
    if '{items}' not in template:
        raise ValueError("user_profiles: the template has no '{items}' field")
    if int(max_items) <= 0:
        raise ValueError(f"user_profiles: max_items must be positive, got "
                         f"{max_items}")
    rowptr, col = rowptr.tolist(), col.tolist()
    n = len(item_text)
    if col and (min(col) < 0 or max(col) >= n):
        raise ValueError(f"user_profiles: item ids outside [0, {n}) (there "
                         f"are {n} item texts)")
    out = []
    for u in range(len(rowptr) - 1):
        items = col[rowptr[u]:rowptr[u + 1]]
        items = items[-max_items:] if recent else items[:max_items]
        texts = [item_text[i] for i in items if item_text[i]]
        out.append(template.format(items=separator.join(texts))
                   if texts else '')
    return out


def load_profiles(source: Union[str, Mapping[object, str]], num: int,
                  what: str = 'user') -> List[str]:
    r"""Profiles written elsewhere (e.g. by an LLM), as a list indexed by
    id: from a dict :obj:`{id: text}`, or a file: JSON (an object
    :obj:`{"id": text}` or a list of texts) or JSON lines (objects with
    :obj:`"id"` (or :obj:`what`, e.g. :obj:`"user"`) and :obj:`"profile"`
    (or :obj:`"text"`); any :obj:`.jsonl` file), optionally gzipped. Ids
    without a profile get :obj:`''` with a warning.

    Args:
        source (str or Mapping): The file or the dict.
        num (int): The number of ids.
        what (str, optional): What the ids are, for messages and the JSON
            lines field. (default: :obj:`'user'`)
    """
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"load_profiles: no file {path}")
        opener = gzip.open if path.endswith('.gz') else open
        with opener(path, 'rt', encoding='utf-8') as f:
            raw = f.read()
        lines = path.endswith(('.jsonl', '.jsonl.gz'))
        if not lines:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                lines = True
        if lines:
            data = {}
            for lineno, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    key = rec['id'] if 'id' in rec else rec[what]
                    text = rec['profile'] if 'profile' in rec else \
                        rec['text']
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise ValueError(
                        f"load_profiles: {path} line {lineno} is neither "
                        f"JSON nor a JSON-lines record with 'id' (or "
                        f"'{what}') and 'profile' (or 'text')") from None
                data[key] = text
        if isinstance(data, list):
            data = dict(enumerate(data))
        where = path
    else:
        data, where = source, 'the given dict'
    if not isinstance(data, Mapping):
        raise ValueError(f"load_profiles: {where} holds a "
                         f"{type(data).__name__}, expected {what} id -> text")
    out = [''] * int(num)
    for key, text in data.items():
        try:
            i = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"load_profiles: {where} has a non-integer "
                             f"{what} id {key!r}") from None
        if not 0 <= i < num:
            raise ValueError(f"load_profiles: {what} id {i} in {where} is "
                             f"outside [0, {num})")
        if not isinstance(text, str):
            raise ValueError(f"load_profiles: the profile of {what} {i} in "
                             f"{where} is {type(text).__name__}, not text")
        out[i] = text
    missing = sum(1 for t in out if not t)
    if missing:
        warnings.warn(f"load_profiles: {missing} of {num} {what}s have no "
                      f"profile in {where}; they get '' (the zero vector)")
    return out


def mean_of_items(rowptr: Tensor, col: Tensor, item_vectors: Tensor,
                  normalize: bool = True) -> Tensor:
    r"""Each user's mean item vector over the CSR rows :obj:`(rowptr, col)`
    (zero for a user without items), L2-normalised if :obj:`normalize`: the
    embedding-space counterpart of a templated profile."""
    counts = rowptr.diff()
    users = torch.repeat_interleave(torch.arange(counts.numel()), counts,
                                    output_size=col.numel())
    out = torch.zeros(counts.numel(), item_vectors.size(1),
                      dtype=item_vectors.dtype)
    out.index_add_(0, users, item_vectors.index_select(0, col))
    out = out / counts.clamp(min=1).unsqueeze(1).to(out.dtype)
    return torch.nn.functional.normalize(out, dim=-1) if normalize else out

