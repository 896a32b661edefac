import pytest
import torch

import pyg_recsys.typing
from pyg_recsys.nn.loss import info_nce, softmax_cross_entropy


def dense_reference(logits, target, groups):
    # float64: per group log-sum-exp minus the target logit, and softmax
    # minus one-hot, from torch's own softmax / logsumexp.
    x = logits.double().view(logits.size(0), groups, -1)
    t = target.view(-1, groups, 1)
    loss = (x.logsumexp(2) - x.gather(2, t).squeeze(2)).sum(1)
    grad = x.softmax(2).scatter_add(2, t, -torch.ones_like(t, dtype=x.dtype))
    return loss, grad.view_as(logits)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('groups,size', [(1, 1), (1, 7), (3, 17), (2, 100),
                                         (3, 1000)])
def test_softmax_ce_rows_against_dense(isa, dtype, groups, size):
    # Sizes below, at and off the 8- and 16-wide vector loops; logits up to
    # +-60 (far from 0, so that the max shift matters).
    g = torch.Generator().manual_seed(size)
    rows = 5
    logits = (torch.rand(rows, groups * size, generator=g,
                         dtype=torch.float64) * 120 - 60).to(dtype)
    target = torch.randint(0, size, (rows, groups), generator=g)
    want_loss, want_grad = dense_reference(logits, target, groups)
    x = logits.clone()
    loss = torch.ops.pyg_recsys.softmax_ce_rows_(x, target, groups)
    tol = {'rtol': 1e-5, 'atol': 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(loss.double(), want_loss, **tol)
    torch.testing.assert_close(x.double(), want_grad, **tol)


def test_softmax_ce_rows_nan_and_errors(isa):
    x = torch.randn(3, 2 * 20)
    x[1, 25] = float('nan')  # row 1, group 1
    target = torch.zeros(3, 2, dtype=torch.long)
    loss = torch.ops.pyg_recsys.softmax_ce_rows_(x, target, 2)
    assert torch.isnan(loss[1]) and not torch.isnan(loss[[0, 2]]).any()
    assert torch.isnan(x[1, 20:]).all() and not torch.isnan(x[1, :20]).any()
    ops = torch.ops.pyg_recsys
    with pytest.raises(RuntimeError, match='groups of equal size'):
        ops.softmax_ce_rows_(torch.randn(2, 7), torch.zeros(2, 2).long(), 2)
    with pytest.raises(RuntimeError, match='must lie in'):
        ops.softmax_ce_rows_(torch.randn(2, 8), torch.full((2, 2), 4), 2)
    with pytest.raises(RuntimeError, match='shape'):
        ops.softmax_ce_rows_(torch.randn(2, 8), torch.zeros(3, 2).long(), 2)


def test_softmax_ce_rows_opcheck():
    if not pyg_recsys.typing.WITH_EXT:
        pytest.skip('extension not available')
    x = torch.randn(4, 3 * 9, dtype=torch.float64)
    target = torch.randint(0, 9, (4, 3))
    torch.library.opcheck(torch.ops.pyg_recsys.softmax_ce_rows_.default,
                          (x, target, 3))


@pytest.mark.parametrize('chunk', [1, 4, 32])
def test_losses_same_on_both_paths(ext, chunk):
    # info_nce with three views and softmax_cross_entropy against dense
    # float64 references, on the compiled and the pure-PyTorch block path.
    g = torch.Generator().manual_seed(3)
    a = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(3, 9, 6, generator=g, dtype=torch.float64,
                    requires_grad=True)
    an = torch.nn.functional.normalize(a, dim=1) / 0.5
    pn = torch.nn.functional.normalize(p, dim=2)
    ref = sum(torch.nn.functional.cross_entropy(an @ pn[v].t(),
                                                torch.arange(9))
              for v in range(3))
    value = info_nce(a, p, 0.5, chunk_size=chunk)
    torch.testing.assert_close(value, ref)
    for x, y in zip(torch.autograd.grad(value, (a, p)),
                    torch.autograd.grad(ref, (a, p))):
        torch.testing.assert_close(x, y)
    items = torch.randn(11, 6, generator=g, dtype=torch.float64,
                        requires_grad=True)
    target = torch.randint(0, 11, (9, ), generator=g)
    value = softmax_cross_entropy(a, items, target, chunk)
    ref = torch.nn.functional.cross_entropy(a @ items.t(), target)
    torch.testing.assert_close(value, ref)
    for x, y in zip(torch.autograd.grad(value, (a, items)),
                    torch.autograd.grad(ref, (a, items))):
        torch.testing.assert_close(x, y)
