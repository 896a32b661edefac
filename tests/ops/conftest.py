import pytest

import pyg_recsys.typing


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
