import os
from pathlib import Path

import pytest

import pyg_recsys.typing

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    r"""The folder of the real data sets.

    :obj:`$PYG_RECSYS_DATA` if set, else :obj:`../shared/data` relative to
    the repository root.
    """
    env = os.environ.get('PYG_RECSYS_DATA')
    return Path(env) if env else REPO_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data() -> Path:
    r"""The folder of the real data sets; skips the test if it is missing.

    Use it in tests marked :obj:`@pytest.mark.dataset`.
    """
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f'real data sets not found at {path} (set '
                    f'PYG_RECSYS_DATA to the folder that holds them)')
    return path

@pytest.fixture(params=['extension', 'pytorch'])
def ext(request, monkeypatch):
    r"""Runs a test once on the compiled kernels (skipped when they are not
    built) and once on the pure-PyTorch path."""
    if request.param == 'extension':
        if not pyg_recsys.typing.WITH_EXT:
            pytest.skip(f'extension not available '
                        f'({pyg_recsys.typing.EXT_ERROR})')
        monkeypatch.setitem(pyg_recsys.typing.PREFER_COMPILED, 'cpu', True)
    else:
        monkeypatch.setattr(pyg_recsys.typing, 'WITH_EXT', False)
        monkeypatch.setitem(pyg_recsys.typing.PREFER_COMPILED, 'cpu', False)
    return request.param


@pytest.fixture(params=['baseline', 'avx2'])
def isa(request, monkeypatch):
    r"""Runs a test on the compiled CPU kernels, once forced to each ISA."""
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip(f'extension not available '
                    f'({pyg_recsys.typing.EXT_ERROR})')
    monkeypatch.setitem(pyg_recsys.typing.PREFER_COMPILED, 'cpu', True)
    import torch
    ops = torch.ops.pyg_recsys
    before = ops.cpu_isa()
    try:
        assert ops.set_cpu_isa(request.param) == request.param
    except (ValueError, RuntimeError) as e:
        if 'not supported' not in str(e):
            raise
        pytest.skip(f'{request.param} not supported by this CPU')
    yield request.param
    ops.set_cpu_isa(before)


def available_devices():
    r"""The devices tests run on: the CPU, and CUDA where one exists."""
    import torch
    return ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.fixture(params=available_devices())
def device(request):
    r"""Runs a test once per available device."""
    return request.param
