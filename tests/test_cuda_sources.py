import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'csrc' / 'cuda_check.sh'


# About 1.5 minutes of compiling: CI runs the same check as `make cuda-check`,
# so `make test` leaves it out and `make test-full` runs it.
@pytest.mark.slow
@pytest.mark.skipif(shutil.which('nvcc') is None and
                    not os.path.exists('/usr/local/cuda/bin/nvcc'),
                    reason='nvcc not installed')
def test_cuda_build_compiles():
    # Compile-only: the machine needs nvcc, not a GPU. Every .cpp is checked
    # with -DWITH_CUDA, every .cu compiled.
    proc = subprocess.run(['bash', str(SCRIPT), sys.executable],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for src in ('csrc/pyg_recsys.cpp', 'csrc/ops/cpu/spmm_kernel.cpp',
                'csrc/ops/cuda/spmm_kernel.cu'):
        assert f'ok: {src} (' in proc.stdout, proc.stdout

