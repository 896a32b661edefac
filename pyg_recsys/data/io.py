r"""Readers for interaction files.

Every reader raises :class:`ValueError` of the form
:obj:`"<path>:<line>: <what is wrong>"` on malformed input, so that a bad
file is found and fixed quickly. Paths ending in :obj:`.gz` are read through
:mod:`gzip`.
"""
import gzip
import os
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

PathLike = Union[str, 'os.PathLike[str]']

__all__ = [
    'Interactions',
    'read_lightgcn',
    'read_table',
    'read_recbole_atomic',
    'remap_ids',
]

# A decimal id has at most 18 digits so that it always fits into int64.
_MAX_DIGITS = 18
_BAD_LIGHTGCN_BYTE = re.compile(rb'[^0-9 \t\n]')
_INT_TOKEN = re.compile(r' *[+-]?[0-9]{1,18} *')
_INT_COLUMN = re.compile(r'(?: *[+-]?[0-9]{1,18} *\n)* *[+-]?[0-9]{1,18} *')


class Interactions(NamedTuple):
    r"""The columns read from an interaction table by :func:`read_table`.

    Attributes:
        pairs (torch.Tensor): 0-based :obj:`(user, item)` pairs, shape
            :obj:`[2, E]`, :obj:`torch.long`, in file order.
        rating (torch.Tensor, optional): Ratings / weights, shape :obj:`[E]`,
            :obj:`torch.float64`, when the table has a :obj:`'rating'`
            column.
        timestamp (torch.Tensor, optional): Timestamps, shape :obj:`[E]`,
            :obj:`torch.float64`, when the table has a :obj:`'timestamp'`
            column.
        user_ids (list, optional): When ids were remapped
            (:obj:`id_base=None`), the raw token of every new user id
            (:obj:`user_ids[new_id] == raw`), else :obj:`None`.
        item_ids (list, optional): The same for items.
    """
    pairs: Tensor
    rating: Optional[Tensor] = None
    timestamp: Optional[Tensor] = None
    user_ids: Optional[list] = None
    item_ids: Optional[list] = None


# ----------------------------------------------------------------------------
def _read_bytes(path: PathLike) -> bytes:
    path = os.fspath(path)
    if path.endswith('.gz'):
        with gzip.open(path, 'rb') as f:
            return f.read()
    with open(path, 'rb') as f:
        return f.read()


def _read_lines(path: PathLike) -> List[str]:
    raw = _read_bytes(path)
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        line = raw.count(b'\n', 0, e.start) + 1
        raise ValueError(f"{os.fspath(path)}:{line}: not valid UTF-8 "
                         f"text") from None
    if text.startswith('\ufeff'):  # byte-order mark
        text = text[1:]
    # Only \n, \r\n and \r end a line (str.splitlines would also split on
    # e.g. \x0c or \x85 and shift the reported line numbers).
    return text.replace('\r\n', '\n').replace('\r', '\n').split('\n')


def _columns(name: str, lines: List[str], first_line: int,
             sep: Optional[str], min_width: int, skip_first: bool = False,
             comment: Optional[str] = None,
             what: str = '') -> Tuple[List[Sequence[str]], np.ndarray]:
    r"""Splits the data lines of a delimited file into columns.

    Blank lines (and :obj:`comment` lines) are skipped; every other line must
    have as many fields as the first one, and at least :obj:`min_width`.
    Returns the columns and the 1-based line number of every row. The work
    is done by whole-text string operations, not per field.
    """
    numbers = range(first_line, first_line + len(lines))
    kept = [(k, line) for k, line in zip(numbers, lines)
            if line.strip() and not (comment and line.startswith(comment))]
    if skip_first:
        kept = kept[1:]
    if not kept:
        raise ValueError(f"{name}: the file is empty (no data lines)")
    line_nos = np.fromiter((k for k, _ in kept), dtype=np.int64,
                           count=len(kept))
    data = [line for _, line in kept]
    if sep is None:
        rows = [line.split() for line in data]
        widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = [tok for row in rows for tok in row]
    else:
        widths = np.fromiter((line.count(sep) for line in data),
                             dtype=np.int64, count=len(data)) + 1
        flat = sep.join(data).split(sep)
    width = int(widths[0])
    if width < min_width:
        raise ValueError(f"{name}:{int(line_nos[0])}: expected at least "
                         f"{min_width} fields{what}, got {width}")
    bad = np.flatnonzero(widths != width)
    if bad.size > 0:
        k = int(bad[0])
        raise ValueError(f"{name}:{int(line_nos[k])}: expected {width} "
                         f"fields like line {int(line_nos[0])}, got "
                         f"{int(widths[k])}")
    return [flat[c::width] for c in range(width)], line_nos


def _lightgcn_error(path: str, raw: bytes, pos: int) -> ValueError:
    r"""Describes the offending token around byte :obj:`pos`."""
    line_no = raw.count(b'\n', 0, pos) + 1
    start = raw.rfind(b'\n', 0, pos) + 1
    end = raw.find(b'\n', pos)
    line = raw[start:end if end >= 0 else len(raw)]
    for token in line.split():
        if not token.isdigit():
            shown = token.decode('utf-8', 'replace')
            if token[:1] == b'-' and token[1:].isdigit():
                return ValueError(f"{path}:{line_no}: negative id {shown}")
            return ValueError(f"{path}:{line_no}: '{shown}' is not a "
                              f"non-negative integer id")
    # Only reachable for a stray control character between tokens.
    return ValueError(f"{path}:{line_no}: unexpected character "
                      f"{bytes(raw[pos:pos + 1])!r}")


def read_lightgcn(path: PathLike) -> Tensor:
    r"""Reads a file in the LightGCN text format.

    Every line is :obj:`user item item ...`: whitespace-separated,
    non-negative, 0-based integer ids. Blank lines are skipped, a line with
    only a user id (a user without items) contributes nothing, and a user
    may occur on several lines (its pairs are concatenated; repeated pairs
    are kept and left to :class:`~pyg_recsys.data.InteractionGraph`, which
    de-duplicates them with a warning). A path ending in :obj:`.gz` is
    decompressed.

    Parsing is vectorised with :mod:`numpy` (no Python work per token): the
    810k-pair Gowalla training file takes a fraction of a second.

    Args:
        path (str or os.PathLike): The file.

    Returns:
        torch.Tensor: The :obj:`(user, item)` pairs in file order, shape
        :obj:`[2, E]`, :obj:`torch.long`.

    Raises:
        ValueError: On a token that is not a non-negative integer (the
            message gives :obj:`path:line` and the token), on an id with more
            than 18 digits, and on a file without any pair (:obj:`"empty"`).
    """
    name = os.fspath(path)
    raw = _read_bytes(path)
    if raw.startswith(b'\xef\xbb\xbf'):  # UTF-8 byte-order mark
        raw = raw[3:]
    if b'\r' in raw:  # Windows (CRLF) or old Mac (CR) line ends
        raw = raw.replace(b'\r\n', b'\n').replace(b'\r', b'\n')
    bad = _BAD_LIGHTGCN_BYTE.search(raw)
    if bad is not None:
        raise _lightgcn_error(name, raw, bad.start())

    buf = np.frombuffer(raw, dtype=np.uint8)
    is_digit = (buf >= ord('0')) & (buf <= ord('9'))
    edge = np.diff(is_digit.astype(np.int8), prepend=np.int8(0),
                   append=np.int8(0))
    starts = np.flatnonzero(edge == 1)
    ends = np.flatnonzero(edge == -1)
    too_long = np.flatnonzero(ends - starts > _MAX_DIGITS)
    if too_long.size > 0:
        pos = int(starts[too_long[0]])
        line_no = raw.count(b'\n', 0, pos) + 1
        raise ValueError(f"{name}:{line_no}: id "
                         f"{raw[pos:int(ends[too_long[0]])].decode()} is "
                         f"too large")

    values = np.fromstring(raw, dtype=np.int64, sep=' ')
    if values.size != starts.size:  # pragma: no cover - defensive
        raise ValueError(f"{name}: could not parse the file as integers")

    # Line index of every token, and whether it opens its line (a user id).
    newlines = np.flatnonzero(buf == ord('\n'))
    line_of = np.searchsorted(newlines, starts)
    is_user = np.ones(starts.size, dtype=bool)
    is_user[1:] = line_of[1:] != line_of[:-1]
    group = np.cumsum(is_user) - 1
    users = values[is_user][group[~is_user]]
    items = values[~is_user]
    if items.size == 0:
        raise ValueError(f"{name}: the file is empty (no (user, item) "
                         f"pairs)")
    return torch.from_numpy(np.stack([users, items]))


# ----------------------------------------------------------------------------
def _parse_ints(path: str, tokens: Sequence[str], line_nos: Sequence[int],
                what: str) -> np.ndarray:
    if _INT_COLUMN.fullmatch('\n'.join(tokens)) is None:
        for tok, line_no in zip(tokens, line_nos):
            if _INT_TOKEN.fullmatch(tok) is None:
                digits = tok.strip(' ').lstrip('+-')
                problem = ('is too large' if digits.isascii()
                           and digits.isdigit() and len(digits) > _MAX_DIGITS
                           else 'is not an integer')
                raise ValueError(f"{path}:{line_no}: {what} '{tok}' "
                                 f"{problem}")
    return np.array(tokens, dtype=np.int64)


def _parse_floats(path: str, tokens: Sequence[str], line_nos: Sequence[int],
                  what: str) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        pass
    for tok, line_no in zip(tokens, line_nos):
        try:
            float(tok)
        except ValueError:
            raise ValueError(f"{path}:{line_no}: {what} '{tok}' is not a "
                             f"number") from None
    raise ValueError(f"{path}: could not parse the {what} column as "
                     f"numbers")  # pragma: no cover - defensive


def _to_ids(path: str, tokens: Sequence[str], line_nos: np.ndarray,
            what: str, id_base: int) -> np.ndarray:
    ids = _parse_ints(path, tokens, line_nos, what)
    below = np.flatnonzero(ids < id_base)
    if below.size > 0:
        k = int(below[0])
        kind = 'negative' if ids[k] < 0 else f'below id_base={id_base}'
        raise ValueError(f"{path}:{int(line_nos[k])}: {what} id "
                         f"{int(ids[k])} is {kind}")
    return ids - id_base


def read_table(path: PathLike, sep: Optional[str] = '\t',
               columns: Sequence[Optional[str]] = ('user', 'item'),
               header: bool = False, id_base: Optional[int] = 0,
               comment: Optional[str] = None) -> Interactions:
    r"""Reads a delimited interaction table (one interaction per line).

    Covers GroupLens :obj:`u.data` (:obj:`columns=('user', 'item', 'rating',
    'timestamp'), id_base=1`), LightGCN-PyTorch's LastFM
    :obj:`data1.txt` / :obj:`test1.txt` (:obj:`('user', 'item', 'rating')`,
    1-based) and Sheaf4Rec's :obj:`dataset_facebook.tsv`.

    Blank lines are skipped. Every other line must have the same number of
    fields, at least :obj:`len(columns)`; fields beyond :obj:`columns` are
    ignored. Ratings and timestamps are parsed as floats (scientific
    notation such as :obj:`3.2466e+05` is accepted).

    Args:
        path (str or os.PathLike): The file (:obj:`.gz` is decompressed).
        sep (str, optional): The field separator; :obj:`None` splits on any
            run of whitespace. (default: :obj:`'\t'`)
        columns (Sequence[str], optional): The name of each leading column:
            :obj:`'user'` and :obj:`'item'` (required), :obj:`'rating'`,
            :obj:`'timestamp'`; :obj:`None` or any other name skips that
            column. (default: :obj:`('user', 'item')`)
        header (bool, optional): Whether the first non-blank line is a
            header to skip. (default: :obj:`False`)
        id_base (int, optional): If an integer, ids are integers starting at
            :obj:`id_base` (e.g. :obj:`1` for 1-based files) and are shifted
            to 0-based; a smaller id is an error. If :obj:`None`, ids are
            arbitrary tokens, remapped by :func:`remap_ids` (users and items
            separately), and the raw tokens are returned in
            :obj:`user_ids` / :obj:`item_ids`. (default: :obj:`0`)
        comment (str, optional): Lines starting with this prefix are
            skipped. (default: :obj:`None`)

    Returns:
        Interactions: The pairs and optional rating / timestamp columns.

    Raises:
        ValueError: On a malformed line, a non-integer, negative or too
            small id, a non-numeric rating or timestamp (all naming
            :obj:`path:line`), or a table without data lines
            (:obj:`"empty"`).
    """
    name = os.fspath(path)
    columns = list(columns)
    for required in ('user', 'item'):
        if columns.count(required) != 1:
            raise ValueError(f"read_table: 'columns' must name exactly one "
                             f"'{required}' column, got {columns}")
    cols, where = _columns(name, _read_lines(path), 1, sep, len(columns),
                           skip_first=header, comment=comment,
                           what=f' ({columns})')
    index = {c: k for k, c in enumerate(columns)}
    raw_u, raw_i = cols[index['user']], cols[index['item']]
    if id_base is None:
        raw_u = [t.strip() for t in raw_u]
        raw_i = [t.strip() for t in raw_i]
    for what, toks in (('user', raw_u), ('item', raw_i)):
        if '' in toks:
            raise ValueError(f"{name}:{int(where[toks.index('')])}: empty "
                             f"{what} id")

    user_ids = item_ids = None
    if id_base is None:
        users, user_ids = remap_ids(raw_u)
        items, item_ids = remap_ids(raw_i)
        pairs = torch.stack([users, items])
    else:
        users = _to_ids(name, raw_u, where, 'user', int(id_base))
        items = _to_ids(name, raw_i, where, 'item', int(id_base))
        pairs = torch.from_numpy(np.stack([users, items]))

    extra = {}
    for col in ('rating', 'timestamp'):
        if col in index:
            vals = _parse_floats(name, cols[index[col]], where, col)
            extra[col] = torch.from_numpy(vals)
    return Interactions(pairs, extra.get('rating'), extra.get('timestamp'),
                        user_ids, item_ids)


# ----------------------------------------------------------------------------
_RECBOLE_TYPES = ('token', 'token_seq', 'float', 'float_seq')


def read_recbole_atomic(
    path: PathLike,
    fields: Optional[Sequence[str]] = None,
) -> Dict[str, Union[Tensor, List]]:
    r"""Reads a RecBole atomic file (:obj:`.inter`, :obj:`.item`, ...).

    The first line is a tab-separated typed header such as
    :obj:`user_id:token	item_id:token	rating:float	timestamp:float`;
    every following non-blank line holds one tab-separated value per field.
    Values are returned by type:

    * :obj:`token`: a list of :obj:`str`;
    * :obj:`token_seq`: a list of lists of :obj:`str` (split on spaces);
    * :obj:`float`: a :obj:`torch.float64` tensor (an empty field is
      :obj:`nan`);
    * :obj:`float_seq`: a list of :obj:`torch.float64` tensors.

    Args:
        path (str or os.PathLike): The file (:obj:`.gz` is decompressed).
        fields (Sequence[str], optional): Only return these fields.
            (default: :obj:`None`, all fields)

    Returns:
        Dict[str, torch.Tensor or list]: Values by field name (without the
        type suffix), in header order.

    Raises:
        ValueError: On a malformed header (unknown type, repeated field), a
            line with the wrong number of fields, or a non-numeric float
            (naming :obj:`path:line`), or a file without data lines.
    """
    name = os.fspath(path)
    lines = _read_lines(path)
    header_no = next((k for k, line in enumerate(lines) if line.strip()),
                     None)
    if header_no is None:
        raise ValueError(f"{name}: the file is empty (no header)")
    names: List[str] = []
    types: List[str] = []
    for spec in lines[header_no].split('\t'):
        field, _, typ = spec.strip().rpartition(':')
        if not field or typ not in _RECBOLE_TYPES:
            raise ValueError(f"{name}:{header_no + 1}: header entry "
                             f"'{spec}' is not 'name:type' with a type in "
                             f"{_RECBOLE_TYPES}")
        if field in names:
            raise ValueError(f"{name}:{header_no + 1}: field '{field}' is "
                             f"repeated")
        names.append(field)
        types.append(typ)
    if fields is not None:
        unknown = [f for f in fields if f not in names]
        if unknown:
            raise ValueError(f"{name}: fields {unknown} are not in the "
                             f"header {names}")

    cols, line_nos = _columns(name, lines[header_no + 1:], header_no + 2,
                              '\t', len(names), what=f' {names}')
    if len(cols) != len(names):
        raise ValueError(f"{name}:{int(line_nos[0])}: expected "
                         f"{len(names)} tab-separated fields {names}, got "
                         f"{len(cols)}")
    out: Dict[str, Union[Tensor, List]] = {}
    for k, (field, typ) in enumerate(zip(names, types)):
        if fields is not None and field not in fields:
            continue
        col = cols[k]
        if typ == 'token':
            out[field] = list(col)
        elif typ == 'token_seq':
            out[field] = [v.split() for v in col]
        elif typ == 'float':
            col = [v if v.strip() else 'nan' for v in col]
            out[field] = torch.from_numpy(
                _parse_floats(name, col, line_nos, field))
        else:
            seqs = []
            for v, line_no in zip(col, line_nos):
                toks = v.split()
                seqs.append(torch.from_numpy(
                    _parse_floats(name, toks, [line_no] * len(toks), field)
                    if toks else np.zeros(0)))
            out[field] = seqs
    return out


# ----------------------------------------------------------------------------
def _as_int_tokens(tokens: Sequence) -> Optional[np.ndarray]:
    r"""The tokens as int64 if all of them are integers, else :obj:`None`."""
    arr = np.asarray(tokens)
    if arr.dtype.kind in 'iu':
        return arr.astype(np.int64)
    if arr.dtype.kind not in 'UO':
        return None
    text = [str(t).strip() for t in tokens]
    if not all(t.lstrip('+-').isdigit() and t.lstrip('+-').isascii()
               for t in text):
        return None
    try:
        return np.array(text, dtype=np.int64)
    except (ValueError, OverflowError):
        return None


def remap_ids(tokens: Union[Sequence, np.ndarray, Tensor]
              ) -> Tuple[Tensor, list]:
    r"""Maps raw ids to contiguous 0-based ids.

    If every token is an integer (a Python / NumPy / PyTorch integer or a
    string of decimal digits), tokens are compared as integers and sorted
    numerically (so :obj:`'2' < '10'`, and :obj:`'7'` and :obj:`'07'` are
    the same id); otherwise they are compared as strings and sorted
    lexicographically. New id :obj:`k` is the :obj:`k`-th smallest
    distinct token.

    Args:
        tokens (Sequence, numpy.ndarray or torch.Tensor): Raw ids, one per
            interaction.

    Returns:
        (torch.Tensor, list): The new id of every token (:obj:`torch.long`,
        same length as :obj:`tokens`) and the vocabulary :obj:`vocab`, with
        :obj:`vocab[new_id]` the raw id (an :obj:`int` in the integer case,
        else a :obj:`str`); :obj:`{raw: new for new, raw in
        enumerate(vocab)}` inverts it.
    """
    if isinstance(tokens, Tensor):
        if tokens.is_floating_point() or tokens.is_complex():
            raise TypeError(f"remap_ids: expected integer ids, got "
                            f"{tokens.dtype}")
        tokens = tokens.cpu().numpy()
    ints = _as_int_tokens(tokens)
    if ints is not None:
        vocab, inverse = np.unique(ints, return_inverse=True)
        return torch.from_numpy(inverse.reshape(-1).astype(np.int64)), \
            vocab.tolist()
    strs = np.asarray([str(t) for t in tokens], dtype=str)
    vocab, inverse = np.unique(strs, return_inverse=True)
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64)), \
        [str(v) for v in vocab]
