import os
import subprocess
import sys

import pytest
import torch

import pyg_recsys.typing as typing


def test_extension_flag_consistent():
    if typing.WITH_EXT:
        assert hasattr(torch.ops.pyg_recsys, 'cuda_version')
        assert (torch.ops.pyg_recsys.cuda_version() != -1) == \
            typing.WITH_CUDA_EXT
    else:
        assert typing.EXT_ERROR


def test_extension_can_be_switched_off():
    env = dict(os.environ, PYG_RECSYS_NO_EXT='1')
    code = ('import pyg_recsys.typing as t; '
            'print(t.WITH_EXT, t.EXT_ERROR)')
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith('False disabled by PYG_RECSYS_NO_EXT')


@pytest.mark.skipif(not typing.WITH_EXT, reason='extension not built')
def test_compiled_cpu_path_only_where_avx2_runs():
    code = ('import pyg_recsys.typing as t, torch; '
            'print(torch.ops.pyg_recsys.cpu_isa(), t.PREFER_COMPILED["cpu"])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env={**os.environ,
                                         'PYG_RECSYS_ISA': 'baseline'})
    assert out.stdout.split() == ['baseline', 'False'], out.stderr
