import os
import subprocess
import sys

import pytest
import torch

import pyg_recsys.typing
from pyg_recsys.ops import light_propagate, mark_symmetric, sddmm, spmm

# Widths: 3 and 60 take the generic loops (also compiled for AVX2), the
# multiples of 8 the explicit AVX2 kernels on the avx2 path (one pass of up to
# 64 features, then the rest); 200 spans several passes.
WIDTHS = [3, 8, 16, 60, 64, 72, 200]


def random_sparse(n, m, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(n, m, generator=g, dtype=torch.float64)
    dense[torch.rand(n, m, generator=g) > density] = 0
    return dense


def bf16_round(t):
    return t.to(torch.bfloat16).to(t.dtype)


def randn(*size, seed, dtype=torch.float64):
    return torch.randn(*size, generator=torch.Generator().manual_seed(seed),
                       dtype=dtype)


def assert_close_bf16(out, ref):
    # A float32 sum a last bit away from the reference's may round a stored
    # bfloat16 entry the other way (2^-8 relative): almost every entry
    # agrees closely, the rest within a few bfloat16 steps.
    close = torch.isclose(out, ref, rtol=1e-4, atol=1e-4)
    assert close.float().mean() > 0.97
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize('width', WIDTHS)
def test_spmm_each_isa_against_dense(width, isa):
    dense = random_sparse(50, 40, seed=1)
    dense[5] = 0  # an empty row
    csr = dense.to_sparse_csr()
    x = randn(40, width, seed=11)
    expected = dense @ x
    for dtype in (torch.float32, torch.float64):
        for index in (torch.int32, torch.int64):
            adj = torch.sparse_csr_tensor(
                csr.crow_indices(), csr.col_indices().to(index),
                csr.values().to(dtype), (50, 40))
            out = spmm(adj, x.to(dtype))
            assert out.dtype == dtype
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            torch.testing.assert_close(out, expected.to(dtype), rtol=tol,
                                       atol=tol)


@pytest.mark.parametrize('width', WIDTHS)
def test_light_propagate_each_isa_against_dense(width, isa):
    # Float32 and float64 storage against dense float64 powers, and the
    # bfloat16 storage against Horner's rule in float64 with the gathered
    # rows rounded, forward and backward (the same map on the gradient).
    n = 60
    dense = random_sparse(n, n, density=0.1, seed=2)
    dense[[0, 30]] = 0.01  # two hub rows, longer than the prefetch distance
    dense[7] = 0  # an empty row
    sym = dense + dense.t()
    alpha = [0.25, 0.5, 0.125, 0.125]
    x = randn(n, width, seed=12)
    exact = sum(a * torch.linalg.matrix_power(sym, k) @ x
                for k, a in enumerate(alpha))
    for dtype in (torch.float32, torch.float64):
        adj = mark_symmetric(sym.to(dtype).to_sparse_csr())
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(light_propagate(adj, x.to(dtype), 3,
                                                   alpha),
                                   exact.to(dtype), rtol=tol, atol=tol)
    adj = mark_symmetric(sym.float().to_sparse_csr())
    horner = x
    for k in (2, 1, 0):
        horner = sym @ bf16_round(horner.float()).double()
        if k == 2:
            horner = alpha[3] * horner
        horner = horner + alpha[k] * x
    xf = x.float().requires_grad_()
    out = light_propagate(adj, xf, 3, alpha, storage_dtype=torch.bfloat16)
    assert_close_bf16(out.detach(), horner.float())
    g = randn(n, width, seed=13, dtype=torch.float32)
    out.backward(g)
    torch.testing.assert_close(
        xf.grad, light_propagate(adj, g, 3, alpha,
                                 storage_dtype=torch.bfloat16))


@pytest.mark.parametrize('width', [3, 16, 64, 70])
def test_sddmm_each_isa_against_dense(width, isa):
    dense = random_sparse(30, 20, seed=3)
    adj = dense.to_sparse_csr()
    a = randn(30, width, seed=14)
    b = randn(20, width, seed=15)
    expected = (a @ b.t())[dense != 0]
    torch.testing.assert_close(sddmm(adj, a, b), expected)
    torch.testing.assert_close(sddmm(adj, a.float(), b.float()),
                               expected.float(), rtol=1e-5, atol=1e-5)


def test_isas_agree(monkeypatch):
    # Both ISAs sum the same products: equal up to the order of float32
    # additions and FMA contraction.
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    ops = torch.ops.pyg_recsys
    before = ops.cpu_isa()
    try:
        ops.set_cpu_isa('avx2')
    except (ValueError, RuntimeError):
        pytest.skip('avx2 not supported by this CPU')
    monkeypatch.setitem(pyg_recsys.typing.PREFER_COMPILED, 'cpu', True)
    dense = random_sparse(300, 300, density=0.05, seed=4)
    adj = (dense + dense.t()).float().to_sparse_csr()
    x = randn(300, 64, seed=16, dtype=torch.float32)
    out = {}
    try:
        for name in ('avx2', 'baseline'):
            ops.set_cpu_isa(name)
            out[name] = [spmm(adj, x), light_propagate(adj, x, 3),
                         light_propagate(adj, x, 3,
                                         storage_dtype=torch.bfloat16)]
    finally:
        ops.set_cpu_isa(before)
    for fast, base in zip(out['avx2'][:2], out['baseline'][:2]):
        torch.testing.assert_close(fast, base, rtol=1e-5, atol=1e-5)
    assert_close_bf16(out['avx2'][2], out['baseline'][2])


def test_set_cpu_isa_checks_its_argument():
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    ops = torch.ops.pyg_recsys
    before = ops.cpu_isa()
    assert before in ('baseline', 'avx2')
    with pytest.raises(ValueError, match='unknown ISA'):
        ops.set_cpu_isa('sse9')
    assert ops.cpu_isa() == before
    assert ops.set_cpu_isa('auto') in ('baseline', 'avx2')
    ops.set_cpu_isa(before)


@pytest.mark.parametrize('env, expected', [('baseline', 'baseline'),
                                           ('auto', None), ('bogus', None)])
def test_isa_environment_variable(env, expected):
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    # The warning of an unknown name comes from C++ (TORCH_WARN, on stderr).
    code = ('import torch, pyg_recsys.typing\n'
            'isa = torch.ops.pyg_recsys.cpu_isa()\n'
            'print(isa, torch.ops.pyg_recsys.set_cpu_isa("auto"))')
    out = subprocess.run([sys.executable, '-c', code],
                         env=dict(os.environ, PYG_RECSYS_ISA=env),
                         capture_output=True, text=True, check=True)
    isa, best = out.stdout.split()
    assert isa == (expected or best)
    assert ("unknown PYG_RECSYS_ISA='bogus'" in out.stderr) == (env == 'bogus')
