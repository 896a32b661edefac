import pytest
import torch

import pyg_recsys.typing
from pyg_recsys.ops import (
    CSR,
    light_propagate,
    mark_symmetric,
    spmm,
    spmm_reference,
    to_csr,
)


def random_sparse(n, m, density=0.3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(n, m, generator=g, dtype=dtype)
    dense[torch.rand(n, m, generator=g) > density] = 0
    return dense


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_spmm_matches_dense(dtype, ext):
    dense = random_sparse(7, 5, dtype=dtype)
    dense[3] = 0  # an empty row
    x = torch.randn(5, 4, dtype=dtype)
    out = spmm(dense.to_sparse_csr(), x)
    torch.testing.assert_close(out, dense @ x)
    torch.testing.assert_close(spmm(dense.to_sparse_coo(), x), dense @ x)
    torch.testing.assert_close(spmm_reference(to_csr(dense.to_sparse_csr()),
                                              x), dense @ x)


def test_spmm_gradients_against_dense(ext):
    dense = random_sparse(6, 6)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    adj = dense.to_sparse_csr()
    g = torch.randn(6, 3, dtype=torch.float64)
    (spmm(adj, x) * g).sum().backward()
    torch.testing.assert_close(x.grad, dense.t() @ g)


def test_spmm_gradcheck_values_and_input(ext):
    dense = random_sparse(5, 4, density=0.5)
    csr = dense.to_sparse_csr()
    rowptr, col = csr.crow_indices(), csr.col_indices()
    value = csr.values().clone().requires_grad_()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)

    def f(value, x):
        adj = torch.sparse_csr_tensor(rowptr, col, value, (5, 4))
        return spmm(adj, x)

    assert torch.autograd.gradcheck(f, (value, x))
    assert torch.autograd.gradgradcheck(f, (value, x))


def test_symmetric_mark_and_transpose_cache(ext):
    dense = random_sparse(6, 6, seed=1)
    sym = dense + dense.t()
    adj = mark_symmetric(sym.to_sparse_csr())
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    spmm(adj, x).sum().backward()
    torch.testing.assert_close(x.grad, sym.t() @ torch.ones(6, 2,
                                                            dtype=sym.dtype))
    # A non-symmetric matrix: backward must use the true transpose, twice.
    adj = dense.to_sparse_csr()
    for _ in range(2):
        x.grad = None
        spmm(adj, x).sum().backward()
        torch.testing.assert_close(
            x.grad, dense.t() @ torch.ones(6, 2, dtype=dense.dtype))


def test_spmm_edge_cases(ext):
    # Empty matrix, isolated nodes, a hub row, non-contiguous input.
    empty = torch.sparse_csr_tensor(torch.zeros(4, dtype=torch.long),
                                    torch.zeros(0, dtype=torch.long),
                                    torch.zeros(0), (3, 5))
    assert spmm(empty, torch.randn(5, 2)).abs().sum() == 0
    n = 50
    dense = torch.zeros(n, n, dtype=torch.float64)
    dense[0, 1:] = 1.0  # one node connected to all others
    dense[1:, 0] = 1.0
    x = torch.randn(4, n, dtype=torch.float64).t()  # non-contiguous
    assert not x.is_contiguous()
    torch.testing.assert_close(spmm(dense.to_sparse_csr(), x), dense @ x)


@pytest.mark.parametrize('width', [16, 64])
def test_hub_rows_longer_than_the_prefetch_distance(width, ext):
    # The kernels prefetch up to 128 entries ahead across row boundaries:
    # two hub rows with every column stored, among sparse rows, float32,
    # against float64.
    n = 600
    dense = random_sparse(n, n, density=0.01, seed=21)
    dense[[0, 300]] = 0.01
    dense[:, [0, 300]] = 0.01
    sym = dense + dense.t()
    adj = mark_symmetric(sym.float().to_sparse_csr())
    x = torch.randn(n, width, dtype=torch.float64)
    alpha = [0.25] * 4
    expected = sum(a * torch.linalg.matrix_power(sym, k) @ x
                   for k, a in enumerate(alpha))
    torch.testing.assert_close(spmm(adj, x.float()), (sym @ x).float(),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(light_propagate(adj, x.float(), 3, alpha),
                               expected.float(), rtol=1e-4, atol=1e-4)


def test_spmm_bad_input(ext):
    adj = random_sparse(3, 4).to_sparse_csr()
    with pytest.raises(ValueError, match='columns'):
        spmm(adj, torch.randn(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match='2-D'):
        spmm(adj, torch.randn(4, dtype=torch.float64))
    with pytest.raises(TypeError, match='sparse'):
        spmm(torch.randn(3, 4), torch.randn(4, 2))


def test_csr_transpose(ext):
    dense = random_sparse(5, 7, seed=3)
    csr = to_csr(dense.to_sparse_csr())
    t, perm = csr.transpose()
    assert isinstance(t, CSR)
    back = torch.sparse_csr_tensor(t.rowptr, t.col, t.value, (7, 5))
    torch.testing.assert_close(back.to_dense(), dense.t())


def test_light_propagate_matches_dense_powers(ext):
    dense = random_sparse(6, 6, seed=4)
    sym = (dense + dense.t()) / 4
    adj = mark_symmetric(sym.to_sparse_csr())
    x = torch.randn(6, 3, dtype=torch.float64)
    alpha = [0.4, 0.3, 0.2, 0.1]
    expected = sum(a * torch.linalg.matrix_power(sym, k) @ x
                   for k, a in enumerate(alpha))
    torch.testing.assert_close(light_propagate(adj, x, 3, alpha), expected)
    with pytest.raises(ValueError, match='layer weights'):
        light_propagate(adj, x, 3, [1.0, 2.0])


@pytest.mark.parametrize('num_layers', [0, 1, 2, 3, 5])
@pytest.mark.parametrize('width', [5, 64, 72])
def test_light_propagate_layer_counts(num_layers, width, ext):
    # Every depth (no buffer, one, two ping-pong buffers) and unequal weights
    # with a zero last weight, float32 and float64, against dense powers.
    dense = random_sparse(40, 40, density=0.15, seed=13)
    dense[3] = 0  # an empty row
    sym = (dense + dense.t()) / 4
    alpha = [0.5 ** k for k in range(num_layers + 1)]
    for dtype in (torch.float64, torch.float32):
        adj = sym.to(dtype).to_sparse_csr()
        x = torch.randn(40, width, dtype=torch.float64)
        expected = sum(a * torch.linalg.matrix_power(sym, k) @ x
                       for k, a in enumerate(alpha))
        out = light_propagate(adj, x.to(dtype), num_layers, alpha)
        torch.testing.assert_close(out, expected.to(dtype))
        if num_layers:
            zero_last = alpha[:-1] + [0.0]
            expected = sum(a * torch.linalg.matrix_power(sym, k) @ x
                           for k, a in enumerate(zero_last))
            torch.testing.assert_close(
                light_propagate(adj, x.to(dtype), num_layers, zero_last),
                expected.to(dtype))


def test_light_propagate_backward_symmetric_and_general(ext):
    dense = random_sparse(7, 7, seed=5)
    for sym, mark in ((dense + dense.t(), True), (dense, False)):
        adj = sym.to_sparse_csr()
        if mark:
            mark_symmetric(adj)
        x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
        g = torch.randn(7, 5, dtype=torch.float64)
        alpha = [0.25, 0.5, 0.125, 0.125]
        (light_propagate(adj, x, 3, alpha) * g).sum().backward()
        expected = sum(a * torch.linalg.matrix_power(sym.t(), k) @ g
                       for k, a in enumerate(alpha))
        torch.testing.assert_close(x.grad, expected)
        assert torch.autograd.gradcheck(
            lambda x: light_propagate(adj, x, 3, alpha), (x, ))


def test_light_propagate_value_gradients(ext):
    dense = random_sparse(5, 5, seed=6)
    csr = dense.to_sparse_csr()
    value = csr.values().clone().requires_grad_()
    x = torch.randn(5, 2, dtype=torch.float64)

    def f(value):
        adj = torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(),
                                      value, (5, 5))
        return light_propagate(adj, x, 2)

    assert torch.autograd.gradcheck(f, (value, ))


def test_int32_columns_and_large_feature_width(ext):
    dense = random_sparse(40, 40, density=0.2, seed=7, dtype=torch.float32)
    csr = dense.to_sparse_csr()
    adj = torch.sparse_csr_tensor(csr.crow_indices().int(),
                                  csr.col_indices().int(), csr.values(),
                                  (40, 40))
    for width in (1, 63, 64, 65, 200):
        x = torch.randn(40, width)
        torch.testing.assert_close(spmm(adj, x), dense @ x, rtol=1e-5,
                                   atol=1e-5)


def test_compiled_ops_opcheck():
    import pyg_recsys.typing
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    dense = random_sparse(6, 4, seed=8)
    csr = dense.to_sparse_csr()
    # Plain tensors (not views of the sparse tensor) for opcheck.
    rowptr, col, value = (t.clone() for t in (csr.crow_indices(),
                                              csr.col_indices(),
                                              csr.values()))
    x = torch.randn(4, 3, dtype=torch.float64)
    ops = torch.ops.pyg_recsys
    torch.library.opcheck(ops.spmm_csr.default, (rowptr, col, value, x))
    torch.library.opcheck(ops.spmm_csr.default, (rowptr, col, None, x))
    torch.library.opcheck(ops.sddmm_csr.default,
                          (rowptr, col, torch.randn(6, 3, dtype=torch.float64),
                           x))
    sq = random_sparse(5, 5, seed=9).to_sparse_csr()
    torch.library.opcheck(ops.light_propagate_csr.default,
                          (sq.crow_indices().clone(),
                           sq.col_indices().clone(), sq.values().clone(),
                           torch.randn(5, 3, dtype=torch.float64),
                           [0.5, 0.25, 0.25]))
    torch.library.opcheck(ops.light_propagate_csr.default,
                          (sq.crow_indices().clone(),
                           sq.col_indices().clone(),
                           sq.values().clone().float(),
                           torch.randn(5, 16), [0.5, 0.25, 0.25], True))
    torch.testing.assert_close(ops.spmm_csr(rowptr, col, value, x), dense @ x)
    with pytest.raises(RuntimeError, match='same dtype'):
        ops.spmm_csr(rowptr, col, value.float(), x)


def bf16_round(t):
    return t.to(torch.bfloat16).to(t.dtype)


# Widths that are multiples of 8 take the AVX2 kernel (one pass of up to 64
# features, then the rest); 3 takes the scalar loop.
@pytest.mark.parametrize('width', [3, 8, 16, 24, 64, 72, 80])
def test_light_propagate_bf16_storage(width, ext):
    # Reference: Horner's rule in dense float64, y <- A y + alpha_k x, with
    # the gathered rows (x, then each y) rounded to bfloat16, as the storage
    # option defines them.
    dense = random_sparse(30, 30, density=0.2, seed=10, dtype=torch.float32)
    dense[7] = 0  # an empty row
    sym = dense + dense.t()
    csr = sym.to_sparse_csr()
    adj = mark_symmetric(torch.sparse_csr_tensor(
        csr.crow_indices(), csr.col_indices().int(), csr.values(), (30, 30)))
    x = torch.randn(30, width)
    alpha = [0.25, 0.5, 0.125, 0.125]
    x64, expected = x.double(), x.double()
    for k in (2, 1, 0):
        expected = sym.double() @ bf16_round(expected.float()).double()
        if k == 2:
            expected = alpha[3] * expected
        expected = expected + alpha[k] * x64
    out = light_propagate(adj, x, 3, alpha, storage_dtype=torch.bfloat16)
    torch.testing.assert_close(out, expected.float(), rtol=2e-2, atol=2e-2)
    exact = light_propagate(adj, x, 3, alpha)
    err = (out - exact).norm() / exact.norm()
    assert 0 < err < 1e-2  # rounded, but only by about 2^-9 per step
    # Backward applies the same rounded map to the gradient.
    xg = x.clone().requires_grad_()
    g = torch.randn(30, width)
    (light_propagate(adj, xg, 3, alpha, storage_dtype=torch.bfloat16)
     * g).sum().backward()
    torch.testing.assert_close(
        xg.grad, light_propagate(adj, g, 3, alpha,
                                 storage_dtype=torch.bfloat16))


@pytest.mark.parametrize('width', [8, 16, 64, 80])
def test_light_propagate_bf16_storage_compiled_matches_pytorch(width,
                                                               monkeypatch):
    # The compiled kernel and the PyTorch emulation round the same sums:
    # equal up to the order of float32 additions within a row (and FMA
    # contraction), except where such a last-bit difference rounds a stored
    # bfloat16 entry the other way (2^-8 relative; rare, and more so with
    # the AVX2 kernels than with the baseline ones).
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not built')
    dense = random_sparse(200, 200, density=0.05, seed=12,
                          dtype=torch.float32)
    adj = (dense + dense.t()).to_sparse_csr()
    x = torch.randn(200, width)
    out = {}
    for compiled in (True, False):
        monkeypatch.setitem(pyg_recsys.typing.PREFER_COMPILED, 'cpu',
                            compiled)
        out[compiled] = light_propagate(adj, x, 3, [0.25] * 4,
                                        storage_dtype=torch.bfloat16)
    close = torch.isclose(out[True], out[False], rtol=1e-5, atol=1e-6)
    assert close.float().mean() > 0.99
    torch.testing.assert_close(out[True], out[False], rtol=1e-2, atol=1e-2)


def test_light_propagate_bf16_storage_keeps_nan_and_checks_dtype(ext):
    dense = random_sparse(6, 6, seed=11, dtype=torch.float32)
    adj = (dense + dense.t() + torch.eye(6)).to_sparse_csr()
    x = torch.randn(6, 16)
    x[2, 5] = float('nan')
    out = light_propagate(adj, x, 2, storage_dtype=torch.bfloat16)
    assert torch.isnan(out[:, 5]).any() and not torch.isnan(out[:, 4]).any()
    with pytest.raises(ValueError, match='storage_dtype'):
        light_propagate(adj, x.double(), 2, storage_dtype=torch.bfloat16)
    with pytest.raises(ValueError, match='storage_dtype'):
        light_propagate(adj, x, 2, storage_dtype=torch.float16)


def test_compiled_ops_trace_without_graph_breaks():
    import pyg_recsys.typing
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    # fullgraph=True fails on any graph break; the fake kernels make the ops
    # traceable. (Dynamo cannot wrap torch.sparse tensors themselves, so
    # compiled code passes the CSR arrays.)
    sq = random_sparse(5, 5, seed=12, dtype=torch.float32).to_sparse_csr()
    rowptr, col, value = (t.clone() for t in (
        sq.crow_indices(), sq.col_indices(), sq.values()))
    x = torch.randn(5, 8)
    ops = torch.ops.pyg_recsys

    def f(rowptr, col, value, x):
        y = ops.light_propagate_csr(rowptr, col, value, x, [0.5, 0.5], True)
        return ops.spmm_csr(rowptr, col, value, y) + \
            ops.sddmm_csr(rowptr, col, y, x).sum()

    compiled = torch.compile(f, fullgraph=True, backend='aot_eager')
    torch.testing.assert_close(compiled(rowptr, col, value, x),
                               f(rowptr, col, value, x))


@pytest.mark.parametrize('symmetric', [False, True])
def test_sddmm_gradients_against_dense(symmetric, ext):
    from pyg_recsys.ops import sddmm
    dense = random_sparse(6, 6, density=0.4, seed=13)
    if symmetric:
        dense = dense + dense.t()
    adj = dense.to_sparse_csr()
    if symmetric:
        mark_symmetric(adj)
    mask = dense != 0
    a = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    out = sddmm(adj, a, b)
    torch.testing.assert_close(out, (a @ b.t())[mask])  # row-major order
    g = torch.randn_like(out)
    (out * g).sum().backward()
    dense_g = torch.zeros(6, 6, dtype=torch.float64)
    dense_g[mask] = g
    torch.testing.assert_close(a.grad, dense_g @ b.detach())
    torch.testing.assert_close(b.grad, dense_g.t() @ a.detach())
    assert torch.autograd.gradcheck(lambda a, b: sddmm(adj, a, b), (a, b))
    # Same tensor on both sides, as a cosine mask uses it.
    h = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    sddmm(adj, h, h).sum().backward()
    torch.testing.assert_close(h.grad, (mask.double() + mask.double().t())
                               @ h.detach())
    with pytest.raises(ValueError, match='sddmm'):
        sddmm(adj, a, b[:4])


def test_spmm_value_override_gradients(ext):
    dense = random_sparse(5, 4, density=0.5, seed=14)
    adj = dense.to_sparse_csr()
    nnz = adj.values().numel()
    value = torch.rand(nnz, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    expected = torch.zeros(5, 4, dtype=torch.float64)
    expected[dense != 0] = value.detach()
    torch.testing.assert_close(spmm(adj, x, value=value), expected @ x)
    assert torch.autograd.gradcheck(lambda v, x: spmm(adj, x, value=v),
                                    (value, x))
    with pytest.raises(ValueError, match='one entry per stored'):
        spmm(adj, x, value=value[:-1])
