import subprocess
import sys

import pytest

import pyg_recsys
import pyg_recsys.nn
import pyg_recsys.nn.models


def _run(code: str) -> str:
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_gte_path_does_not_import_torch_geometric():
    code = ('import sys\n'
            'from pyg_recsys.data import load_dataset\n'
            'from pyg_recsys.metrics import Evaluator\n'
            'from pyg_recsys.nn import GTE\n'
            'import pyg_recsys\n'
            'print(GTE.__name__, "torch_geometric" in sys.modules)')
    assert _run(code) == 'GTE False'


def test_lazy_names_resolve_to_the_defining_modules():
    from pyg_recsys.nn.conv.sheaf_conv import SheafConv
    from pyg_recsys.nn.models.lightgcn import LightGCN
    assert pyg_recsys.nn.SheafConv is SheafConv
    assert pyg_recsys.nn.models.LightGCN is LightGCN
    assert pyg_recsys.nn.loss.__name__ == 'pyg_recsys.nn.loss'
    assert pyg_recsys.train.Trainer.__name__ == 'Trainer'
    for module in (pyg_recsys, pyg_recsys.nn, pyg_recsys.nn.models):
        assert set(module.__all__) <= set(dir(module))
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_star_import_and_unknown_name():
    namespace = {}
    exec('from pyg_recsys.nn import *', namespace)
    assert {'LightGCN', 'GTE', 'SheafConv'} <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        pyg_recsys.nn.Nope
