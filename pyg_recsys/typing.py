"""Flags and types shared by the package.

``WITH_EXT`` tells whether the compiled library ``pyg_recsys._C`` loaded.
Read it as a module attribute (``pyg_recsys.typing.WITH_EXT``) so that tests
can switch the extension off at run time.
"""
import os
import os.path as osp
import warnings
from typing import Union

import torch
from torch import Tensor

WITH_EXT = False
WITH_CUDA_EXT = False
EXT_ERROR = None


def _load_extension() -> None:
    global WITH_EXT, WITH_CUDA_EXT, EXT_ERROR
    if os.getenv('PYG_RECSYS_NO_EXT', '0') == '1':
        EXT_ERROR = 'disabled by PYG_RECSYS_NO_EXT=1'
        return
    here = osp.dirname(osp.abspath(__file__))
    candidates = [f for f in os.listdir(here)
                  if f.startswith('_C') and f.endswith(('.so', '.pyd'))]
    if not candidates:
        EXT_ERROR = 'not built'
        return
    try:
        torch.ops.load_library(osp.join(here, candidates[0]))
        WITH_EXT = True
        WITH_CUDA_EXT = torch.ops.pyg_recsys.cuda_version() != -1
    except Exception as e:  # noqa: BLE001
        EXT_ERROR = str(e)
        warnings.warn(f"pyg_recsys: could not load the compiled extension "
                      f"({e}); falling back to pure PyTorch ops")


_load_extension()

# An adjacency as PyG layers accept it: an `edge_index` tensor, a
# `torch.sparse` tensor (CSR preferred) or a `torch_sparse.SparseTensor`.
Adj = Union[Tensor, 'torch_sparse.SparseTensor']  # noqa: F821
