"""Flags and types shared by the package.

``WITH_EXT`` tells whether the compiled library ``pyg_recsys._C`` loaded.
Read it as a module attribute (``pyg_recsys.typing.WITH_EXT``) so that tests
can switch the extension off at run time.
"""
import os
import os.path as osp
import warnings

import torch

WITH_EXT = False
WITH_CUDA_EXT = False
EXT_ERROR = None

# Per device type: whether the compiled kernels are used when built. A kernel
# is switched on only where benchmarks/bench_propagation.py shows it beating
# the best pure-PyTorch path: on the 2-core CPU (Gowalla, d=64, 3 layers,
# fwd+bwd) the fused compiled light_propagate took 42.8 ms against 50.6 ms
# for embedding_bag with a symmetric backward. The CUDA kernels are not timed
# yet (no GPU session so far), so they stay off. Tests switch both ways.
PREFER_COMPILED = {'cpu': True, 'cuda': False}


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
        from pyg_recsys.ops._fake import register
        register()
        WITH_EXT = True
        WITH_CUDA_EXT = torch.ops.pyg_recsys.cuda_version() != -1
        # Without AVX2/FMA the compiled CPU loops lose to the embedding_bag
        # path (Gowalla d=64 fwd+bwd: 161.8 ms against 120.6 ms, with
        # PYG_RECSYS_ISA=baseline on a loaded machine), so they are used only
        # where the AVX2 versions run.
        if torch.ops.pyg_recsys.cpu_isa() != 'avx2':
            PREFER_COMPILED['cpu'] = False
    except Exception as e:  # noqa: BLE001
        EXT_ERROR = str(e)
        warnings.warn(f"pyg_recsys: could not load the compiled extension "
                      f"({e}); falling back to pure PyTorch ops")


_load_extension()
