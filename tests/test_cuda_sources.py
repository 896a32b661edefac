import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / 'csrc' / 'nvcc_check.sh'


@pytest.mark.skipif(shutil.which('nvcc') is None and
                    not os.path.exists('/usr/local/cuda/bin/nvcc'),
                    reason='nvcc not installed')
def test_cuda_sources_compile():
    # Compile-only: the machine needs nvcc, not a GPU.
    proc = subprocess.run(['bash', str(SCRIPT), sys.executable],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'ok: ops/cuda/spmm_kernel.cu' in proc.stdout
