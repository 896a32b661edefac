r"""Atomic checkpoints that load with :obj:`torch.load(weights_only=True)`."""
import os
import os.path as osp
import tempfile
from typing import Any, Dict

import torch


def save_checkpoint(state: Dict[str, Any], path: str) -> None:
    r"""Writes :obj:`state` to :obj:`path` atomically: the data goes to a
    temporary file in the same directory, is flushed to disk, and replaces
    :obj:`path` in one rename, so a crash never leaves a truncated file and
    the previous checkpoint survives until the new one is complete."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.ckpt-', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str) -> Dict[str, Any]:
    r"""Loads a checkpoint written by :func:`save_checkpoint` with
    :obj:`weights_only=True` (no arbitrary code runs on load)."""
    if not osp.exists(path):
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise ValueError(f"'{path}' is not a readable pyg_recsys checkpoint "
                         f"({e})") from e
