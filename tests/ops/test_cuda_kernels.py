"""The compiled CUDA kernels against dense float64 references (they run
where a GPU and the CUDA build exist; PREFER_COMPILED['cuda'] is switched on
here, whatever its default)."""
import pytest
import torch

import pyg_recsys.typing
from pyg_recsys.ops import light_propagate, mark_symmetric, sddmm, spmm

# 3 and 32: one chunk per lane; 64: two; 100: four; 200: two launches.
WIDTHS = [3, 32, 64, 100, 200]

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='no CUDA device')


@pytest.fixture
def cuda_ext(monkeypatch):
    if not pyg_recsys.typing.WITH_CUDA_EXT:
        pytest.skip(f'CUDA kernels not built '
                    f'({pyg_recsys.typing.EXT_ERROR or "CPU-only build"})')
    monkeypatch.setitem(pyg_recsys.typing.PREFER_COMPILED, 'cuda', True)


def random_sparse(n, m, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(n, m, generator=g, dtype=torch.float64)
    dense[torch.rand(n, m, generator=g) > density] = 0
    return dense


def cuda_csr(dense, dtype, index=torch.int64):
    csr = dense.to_sparse_csr()
    return torch.sparse_csr_tensor(
        csr.crow_indices(), csr.col_indices().to(index),
        csr.values().to(dtype), dense.shape).cuda()


def bf16_round(t):
    return t.to(torch.bfloat16).to(t.dtype)


def randn(*size, seed, dtype=torch.float64):
    return torch.randn(*size, generator=torch.Generator().manual_seed(seed),
                       dtype=dtype)


def horner_bf16(sym, x, alpha):
    # y <- A y + alpha_k x from y = alpha_K A x, every gathered row (x, then
    # each inner term) rounded to bfloat16, in float64.
    y = x
    for k in range(len(alpha) - 2, -1, -1):
        y = sym @ bf16_round(y.float()).double()
        if k == len(alpha) - 2:
            y = alpha[-1] * y
        y = y + alpha[k] * x
    return y


@pytest.mark.parametrize('width', WIDTHS)
def test_cuda_spmm_against_dense(width, cuda_ext):
    dense = random_sparse(70, 50, seed=1)
    dense[4] = 0  # an empty row
    x = randn(50, width, seed=21)
    for dtype in (torch.float32, torch.float64):
        for index in (torch.int32, torch.int64):
            out = spmm(cuda_csr(dense, dtype, index), x.to(dtype).cuda())
            assert out.is_cuda and out.dtype == dtype
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            torch.testing.assert_close(out.cpu(), (dense @ x).to(dtype),
                                       rtol=tol, atol=tol)


@pytest.mark.parametrize('num_layers', [0, 1, 2, 3])
@pytest.mark.parametrize('width', WIDTHS)
def test_cuda_light_propagate_against_dense(num_layers, width, cuda_ext):
    n = 60
    dense = random_sparse(n, n, density=0.1, seed=2)
    dense[[0, 30]] = 0.01  # two hub rows
    dense[7] = 0  # an empty row
    sym = dense + dense.t()
    alpha = [0.5 ** k for k in range(num_layers + 1)]
    x = randn(n, width, seed=22)
    exact = sum(a * torch.linalg.matrix_power(sym, k) @ x
                for k, a in enumerate(alpha))
    for dtype in (torch.float32, torch.float64):
        for index in (torch.int32, torch.int64):
            adj = mark_symmetric(cuda_csr(sym, dtype, index))
            xc = x.to(dtype).cuda().requires_grad_()
            out = light_propagate(adj, xc, num_layers, alpha)
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            torch.testing.assert_close(out.detach().cpu(), exact.to(dtype),
                                       rtol=tol, atol=tol)
            g = randn(n, width, seed=23)
            out.backward(g.to(dtype).cuda())
            expected = sum(a * torch.linalg.matrix_power(sym, k) @ g
                           for k, a in enumerate(alpha))
            torch.testing.assert_close(xc.grad.cpu(), expected.to(dtype),
                                       rtol=tol, atol=tol)


@pytest.mark.parametrize('num_layers', [1, 2, 3])
@pytest.mark.parametrize('width', WIDTHS)
def test_cuda_light_propagate_bf16_storage(num_layers, width, cuda_ext):
    # The CUDA kernel's bfloat16 storage: the Horner terms it gathers are
    # rounded, sums stay float32 (as on CPU); forward and backward.
    n = 60
    dense = random_sparse(n, n, density=0.1, seed=3)
    dense[7] = 0
    sym = dense + dense.t()
    alpha = [0.25, 0.5, 0.125, 0.125][:num_layers + 1]
    x = randn(n, width, seed=24)
    for index in (torch.int32, torch.int64):
        adj = mark_symmetric(cuda_csr(sym, torch.float32, index))
        xc = x.float().cuda().requires_grad_()
        out = light_propagate(adj, xc, num_layers, alpha,
                              storage_dtype=torch.bfloat16)
        torch.testing.assert_close(out.detach().cpu(),
                                   horner_bf16(sym, x, alpha).float(),
                                   rtol=2e-2, atol=2e-2)
        exact = light_propagate(adj, xc.detach(), num_layers, alpha)
        err = (out.detach() - exact).norm() / exact.norm()
        assert 0 < err < 1e-2  # rounded, by about 2^-9 per step
        g = randn(n, width, seed=25, dtype=torch.float32).cuda()
        out.backward(g)
        torch.testing.assert_close(
            xc.grad, light_propagate(adj, g, num_layers, alpha,
                                     storage_dtype=torch.bfloat16))


def test_cuda_bf16_storage_matches_cpu_kernel(cuda_ext):
    # Same rounding points on both devices: equal up to the order of float32
    # additions (a rounding may go the other way: one bfloat16 step).
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    dense = random_sparse(300, 300, density=0.05, seed=4)
    sym = dense + dense.t()
    x = randn(300, 64, seed=26, dtype=torch.float32)
    cpu = light_propagate(sym.float().to_sparse_csr(), x, 3,
                          storage_dtype=torch.bfloat16)
    gpu = light_propagate(cuda_csr(sym, torch.float32), x.cuda(), 3,
                          storage_dtype=torch.bfloat16)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=2e-2, atol=2e-2)


def test_cuda_bf16_storage_keeps_nan_and_checks_dtype(cuda_ext):
    dense = random_sparse(6, 6, seed=5)
    sym = dense + dense.t() + torch.eye(6, dtype=torch.float64)
    csr = cuda_csr(sym, torch.float32)
    x = randn(6, 16, seed=27, dtype=torch.float32).cuda()
    x[2, 5] = float('nan')
    out = light_propagate(csr, x, 2, storage_dtype=torch.bfloat16)
    assert torch.isnan(out[:, 5]).any() and not torch.isnan(out[:, 4]).any()
    ops = torch.ops.pyg_recsys
    rowptr, col = csr.crow_indices(), csr.col_indices()
    with pytest.raises(RuntimeError, match='needs float32'):
        ops.light_propagate_csr(rowptr, col, None, x.double(), [0.5, 0.5],
                                True)


def test_cuda_sddmm_against_dense(cuda_ext):
    dense = random_sparse(30, 20, seed=6)
    a = randn(30, 40, seed=28)
    b = randn(20, 40, seed=29)
    out = sddmm(cuda_csr(dense, torch.float64), a.cuda(), b.cuda())
    torch.testing.assert_close(out.cpu(), (a @ b.t())[dense != 0])


def test_cuda_ops_opcheck(cuda_ext):
    sq = cuda_csr(random_sparse(5, 5, seed=7), torch.float32)
    rowptr, col, value = (t.clone() for t in (
        sq.crow_indices(), sq.col_indices(), sq.values()))
    ops = torch.ops.pyg_recsys
    x = randn(5, 16, seed=30, dtype=torch.float32).cuda()
    torch.library.opcheck(ops.spmm_csr.default, (rowptr, col, value, x))
    for bf16 in (False, True):
        torch.library.opcheck(ops.light_propagate_csr.default,
                              (rowptr, col, value, x, [0.5, 0.25, 0.25],
                               bf16))


def test_cuda_softmax_ce_rows_against_dense(cuda_ext):
    g = torch.Generator().manual_seed(31)
    for dtype in (torch.float32, torch.float64):
        logits = torch.rand(6, 3 * 300, generator=g,
                            dtype=torch.float64).mul(80).sub(40).to(dtype)
        target = torch.randint(0, 300, (6, 3), generator=g)
        x = logits.view(6, 3, 300).double()
        t = target.view(6, 3, 1)
        want_loss = (x.logsumexp(2) - x.gather(2, t).squeeze(2)).sum(1)
        want = x.softmax(2).scatter_add(2, t, -torch.ones_like(
            t, dtype=x.dtype)).view(6, -1)
        out = logits.cuda()
        loss = torch.ops.pyg_recsys.softmax_ce_rows_(out, target.cuda(), 3)
        tol = {'rtol': 1e-5, 'atol': 1e-5} if dtype == torch.float32 else {}
        torch.testing.assert_close(loss.cpu().double(), want_loss, **tol)
        torch.testing.assert_close(out.cpu().double(), want, **tol)
    torch.library.opcheck(torch.ops.pyg_recsys.softmax_ce_rows_.default,
                          (torch.randn(4, 2 * 9, device='cuda'),
                           torch.randint(0, 9, (4, 2), device='cuda'), 2))
