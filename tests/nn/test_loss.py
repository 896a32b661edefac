import math

import pytest
import torch
from torch_geometric.nn.models.lightgcn import BPRLoss

from pyg_recsys.nn.loss import (
    bpr_loss,
    l2_reg,
    l2_reg_rows,
    softmax_cross_entropy,
)

# A batch of 3 triples in which user 0 appears twice.
USERS = torch.tensor([0, 0, 1])
POS = torch.tensor([0, 1, 1])
NEG = torch.tensor([2, 2, 0])
USER_EGO = torch.tensor([[1.0, 0.0], [2.0, 1.0]])  # |u0|^2 = 1, |u1|^2 = 5
ITEM_EGO = torch.tensor([[0.0, 1.0], [1.0, 1.0], [3.0, 0.0]])  # 1, 2, 9


def batch_rows():
    return USER_EGO[USERS], ITEM_EGO[POS], ITEM_EGO[NEG]


def test_bpr_loss_by_hand():
    pos = torch.tensor([2.0, 0.5])
    neg = torch.tensor([1.0, 1.5])
    expected = (-math.log(1 / (1 + math.exp(-1.0))) -
                math.log(1 / (1 + math.exp(1.0)))) / 2
    assert float(bpr_loss(pos, neg)) == pytest.approx(expected)
    # Several negatives per positive: the mean over all pairs.
    neg2 = torch.tensor([[1.0, 3.0], [1.5, 0.5]])
    expected2 = sum(math.log1p(math.exp(n - p)) for p, row in
                    zip([2.0, 0.5], [[1.0, 3.0], [1.5, 0.5]])
                    for n in row) / 4
    assert float(bpr_loss(pos, neg2)) == pytest.approx(expected2)
    with pytest.raises(ValueError, match='differ'):
        bpr_loss(pos, torch.zeros(3))


@pytest.mark.parametrize('scaling', ['lightgcn', 'dccf', 'pyg'])
@pytest.mark.parametrize('table_rows', [5, 50])  # both branches
def test_l2_reg_rows_equals_the_gathered_penalty(scaling, table_rows):
    # By hand on the small batch (table of 5 rows: the index names more).
    emb = torch.cat([USER_EGO, ITEM_EGO])
    node_index = torch.cat([USERS, POS + 2, NEG + 2])
    expected = {'lightgcn': 0.1 * 0.5 * 31 / 3, 'dccf': 0.1 * 31,
                'pyg': 0.1 * 18 / 3}[scaling]
    assert float(l2_reg_rows(emb, node_index, 3, 0.1, scaling)) == \
        pytest.approx(expected)
    # Value and gradient against l2_reg on the gathered rows, with repeats,
    # several negatives per triple and untouched rows.
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(table_rows, 4, generator=gen, dtype=torch.double,
                         requires_grad=True)
    b = 6
    index = torch.randint(table_rows, (b * 4, ), generator=gen)
    rows = weight[index]
    ref = l2_reg(rows[:b], rows[b:2 * b], rows[2 * b:].view(b, 2, 4), 0.3,
                 scaling, node_index=index)
    out = l2_reg_rows(weight, index, b, 0.3, scaling)
    assert torch.allclose(out, ref)
    g_ref, = torch.autograd.grad(ref, weight)
    g_out, = torch.autograd.grad(out, weight)
    assert torch.allclose(g_out, g_ref)
    with pytest.raises(ValueError, match='unknown scaling'):
        l2_reg_rows(weight, index, b, 0.3, 'other')


def test_l2_scalings_by_hand():
    u, p, n = batch_rows()
    # Rows counted per triple: users 1+1+5, pos 1+2+2, neg 9+9+1 = 31.
    lam = 0.1
    assert float(l2_reg(u, p, n, lam, 'lightgcn')) == pytest.approx(
        lam * 0.5 * 31 / 3)
    assert float(l2_reg(u, p, n, lam, 'dccf')) == pytest.approx(lam * 31)
    # PyG: each distinct node once: users {0, 1} = 6, items {0, 1, 2} = 12.
    num_users = 2
    node_index = torch.cat([USERS, POS + num_users, NEG + num_users])
    assert float(l2_reg(u, p, n, lam, 'pyg', node_index)) == pytest.approx(
        lam * 18 / 3)
    # ... which is what PyG's own BPRLoss computes on the distinct rows.
    emb = torch.cat([USER_EGO, ITEM_EGO])
    zeros = torch.zeros(3)
    pyg = BPRLoss(lambda_reg=lam)(zeros, zeros, emb[node_index.unique()])
    assert float(pyg) - math.log(2) == pytest.approx(lam * 18 / 3, rel=1e-5)
    with pytest.raises(ValueError, match='node_index'):
        l2_reg(u, p, n, lam, 'pyg')
    with pytest.raises(ValueError, match='unknown scaling'):
        l2_reg(u, p, n, lam, 'other')


@pytest.mark.parametrize('chunk', [1, 7, 256])
@pytest.mark.parametrize('grads', [(True, True), (True, False),
                                   (False, True)])
def test_softmax_cross_entropy_equals_dense(chunk, grads):
    gen = torch.Generator().manual_seed(0)
    query = (3 * torch.randn(23, 5, generator=gen,
                             dtype=torch.float64)).requires_grad_(grads[0])
    items = (3 * torch.randn(41, 5, generator=gen,
                             dtype=torch.float64)).requires_grad_(grads[1])
    target = torch.randint(0, 41, (23, ), generator=gen)
    target[:3] = 40  # the last item too
    weight = torch.tensor(0.5, dtype=torch.float64)  # upstream scale
    loss = softmax_cross_entropy(query, items, target, chunk) * weight
    # The reference: the dense logits and a naive log-softmax.
    logits = query @ items.t()
    ref = sum(math.log(sum(math.exp(x) for x in row.tolist()))
              - row[int(t)].item() for row, t in zip(logits, target)) / 23
    assert loss.item() == pytest.approx(ref * weight.item(), rel=1e-12)
    dense = torch.nn.functional.cross_entropy(logits, target) * weight
    inputs = [x for x in (query, items) if x.requires_grad]
    got = torch.autograd.grad(loss, inputs)
    want = torch.autograd.grad(dense, inputs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_softmax_cross_entropy_checks_input():
    q, v = torch.randn(4, 3), torch.randn(6, 3)
    with pytest.raises(ValueError, match='targets must lie'):
        softmax_cross_entropy(q, v, torch.tensor([0, 1, 2, 6]))
    with pytest.raises(ValueError, match='4 targets for 3 rows'):
        softmax_cross_entropy(q[:3], v, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match='must be'):
        softmax_cross_entropy(q, torch.randn(6, 2), torch.zeros(4).long())
    empty = softmax_cross_entropy(q[:0].requires_grad_(), v,
                                  torch.zeros(0).long())
    assert empty.item() == 0.0
