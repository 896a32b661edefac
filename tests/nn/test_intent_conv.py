import pytest
import torch
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn import IntentConv
from pyg_recsys.nn.conv import IntentConvOutput
from pyg_recsys.ops import mark_symmetric

NUM_USERS, NUM_ITEMS = 5, 4
# User 4 has one edge; item 3 (node 8) is isolated.
TRAIN = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3, 4],
                      [0, 1, 1, 2, 0, 0, 1, 2, 2]])


def toy(dim=6, intents=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    graph = InteractionGraph(NUM_USERS, NUM_ITEMS, TRAIN)
    n = NUM_USERS + NUM_ITEMS
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    cu = torch.randn(dim, intents, generator=g, dtype=torch.float64)
    cv = torch.randn(dim, intents, generator=g, dtype=torch.float64)
    return graph, x, cu, cv


def dense_adjacency(edge_index, n, weight=None):
    r"""Dense [target, source] matrix of the edges and its 0/1 pattern."""
    w = torch.ones(edge_index.size(1), dtype=torch.float64) \
        if weight is None else weight.to(torch.float64)
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = w
    return a, (a != 0).to(torch.float64)


def dense_norm(a):
    deg = a.sum(1)
    dinv = torch.where(deg > 0, deg.clamp_min(1e-300).pow(-0.5),
                       torch.zeros_like(deg))
    return dinv.view(-1, 1) * a * dinv.view(1, -1)


def dense_mask(h, pattern):
    r"""Row-normalised (cos + 1) / 2 on the pattern, by explicit loops."""
    n = h.size(0)
    rows = []
    for i in range(n):
        vals = []
        for j in range(n):
            if pattern[i, j] != 0:
                cos = (h[i] @ h[j]) / (h[i].norm().clamp_min(1e-12) *
                                       h[j].norm().clamp_min(1e-12))
                vals.append((cos + 1) / 2)
            else:
                vals.append(h.new_zeros(()))
        row = torch.stack(vals)
        total = row.sum()
        rows.append(row / total if total != 0 else row)
    return torch.stack(rows)


def dense_layer(x, a_hat, pattern, num_users, cu, cv):
    z = a_hat @ x
    r = torch.cat([torch.softmax(x[:num_users] @ cu, 1) @ cu.t(),
                   torch.softmax(x[num_users:] @ cv, 1) @ cv.t()])
    hb = dense_mask(z, pattern) @ x
    hg = dense_mask(r, pattern) @ x
    return IntentConvOutput(x + z + r + hb + hg, z, r, hb, hg)


def assert_outputs_close(out, ref):
    assert isinstance(out, IntentConvOutput)
    for name in IntentConvOutput._fields:
        torch.testing.assert_close(getattr(out, name), getattr(ref, name),
                                   msg=name)


def test_intent_conv_matches_dense(ext):
    graph, x, cu, cv = toy()
    n = x.size(0)
    edge_index = graph.edge_index
    conv = IntentConv()
    assert str(conv) == 'IntentConv()'
    weight = torch.rand(edge_index.size(1), dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1)) + 0.5
    for w in (None, weight):
        a, pattern = dense_adjacency(edge_index, n, w)
        ref = dense_layer(x, dense_norm(a), pattern, NUM_USERS, cu, cv)
        out = conv(x, edge_index, NUM_USERS, cu, cv, w)
        assert_outputs_close(out, ref)
        # The same normalised matrix as a sparse adj_t: CSR, COO, unmarked.
        a_hat = dense_norm(a)
        assert_outputs_close(conv(x, a_hat.to_sparse_csr(), NUM_USERS, cu, cv),
                             ref)
        assert_outputs_close(conv(x, a_hat.to_sparse_coo(), NUM_USERS, cu, cv),
                             ref)
        adj_t = to_torch_csr_tensor(edge_index.flip(0),
                                    a_hat[edge_index[1], edge_index[0]],
                                    size=(n, n))
        assert_outputs_close(conv(x, adj_t, NUM_USERS, cu, cv), ref)
        coo = to_torch_coo_tensor(edge_index.flip(0),
                                  a_hat[edge_index[1], edge_index[0]],
                                  size=(n, n))
        assert_outputs_close(conv(x, coo, NUM_USERS, cu, cv), ref)
    # The package's cached, symmetric-marked adjacency.
    a, pattern = dense_adjacency(edge_index, n)
    ref = dense_layer(x, dense_norm(a), pattern, NUM_USERS, cu, cv)
    adj = graph.norm_adj(dtype=torch.float64)
    assert_outputs_close(conv(x, adj, NUM_USERS, cu, cv), ref)
    # Isolated item: graph views vanish, the intent view does not.
    out = conv(x, adj, NUM_USERS, cu, cv)
    assert out.graph[8].abs().sum() == 0 and out.graph_aug[8].abs().sum() == 0
    assert out.intent_aug[8].abs().sum() == 0
    assert out.intent[8].abs().sum() > 0
    # Masks are row-normalised: propagating ones gives ones on non-empty rows.
    ones = torch.ones_like(x)
    out = conv(ones, adj, NUM_USERS, cu, cv)
    torch.testing.assert_close(out.graph_aug[:8], torch.ones(8, 6,
                                                             dtype=x.dtype))


def test_intent_conv_directed_edges(ext):
    # A non-symmetric pattern: rows (targets) are normalised, not columns.
    n = 5
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 0, 2], [1, 2, 3, 4, 0, 2, 0]])
    g = torch.Generator().manual_seed(2)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    cu = torch.randn(3, 2, generator=g, dtype=torch.float64)
    cv = torch.randn(3, 2, generator=g, dtype=torch.float64)
    a, pattern = dense_adjacency(edge_index, n)
    a_hat = dense_norm(a)
    ref = dense_layer(x, a_hat, pattern, 2, cu, cv)
    conv = IntentConv()
    assert_outputs_close(conv(x, edge_index, 2, cu, cv), ref)
    assert_outputs_close(conv(x, a_hat.to_sparse_csr(), 2, cu, cv), ref)
    # Backward must use the true transposes.
    expected = grads(lambda x, cu, cv: dense_layer(x, a_hat, pattern, 2, cu,
                                                   cv), x, cu, cv)
    for adj in (edge_index, a_hat.to_sparse_csr()):
        got = grads(lambda x, cu, cv: conv(x, adj, 2, cu, cv), x, cu, cv)
        for e, r in zip(got, expected):
            torch.testing.assert_close(e, r)


def grads(fn, x, cu, cv, seed=3):
    x, cu, cv = (t.detach().clone().requires_grad_() for t in (x, cu, cv))
    out = fn(x, cu, cv)
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum()
               for o in out)
    loss.backward()
    return x.grad, cu.grad, cv.grad


def test_intent_conv_gradients_match_dense(ext):
    graph, x, cu, cv = toy()
    n = x.size(0)
    a, pattern = dense_adjacency(graph.edge_index, n)
    a_hat = dense_norm(a)
    expected = grads(lambda x, cu, cv: dense_layer(x, a_hat, pattern,
                                                   NUM_USERS, cu, cv),
                     x, cu, cv)
    assert all(e.abs().sum() > 0 for e in expected)
    conv = IntentConv()
    inputs = [graph.edge_index, graph.norm_adj(dtype=torch.float64),
              a_hat.to_sparse_csr()]
    for adj in inputs:
        got = grads(lambda x, cu, cv: conv(x, adj, NUM_USERS, cu, cv),
                    x, cu, cv)
        for e, r in zip(got, expected):
            torch.testing.assert_close(e, r)


def test_intent_conv_masks_receive_gradients(ext):
    # Through H^beta alone the gradient w.r.t. x has a part that flows
    # through the mask (via Z): it differs from a detached-mask product.
    graph, x, cu, cv = toy()
    adj = graph.norm_adj(dtype=torch.float64)
    conv = IntentConv()
    x1 = x.clone().requires_grad_()
    conv(x1, adj, NUM_USERS, cu, cv).graph_aug.pow(2).sum().backward()
    n = x.size(0)
    _, pattern = dense_adjacency(graph.edge_index, n)
    with torch.no_grad():
        fixed = dense_mask(adj.to_dense() @ x, pattern)
    x2 = x.clone().requires_grad_()
    (fixed @ x2).pow(2).sum().backward()
    assert not torch.allclose(x1.grad, x2.grad)
    # ... and the intent mask brings gradients to the prototypes.
    cu1 = cu.clone().requires_grad_()
    conv(x, adj, NUM_USERS, cu1, cv).intent_aug.sum().backward()
    assert cu1.grad is not None and cu1.grad.abs().sum() > 0


def test_intent_conv_gradcheck(ext):
    # 3 users x 2 items; the pure-PyTorch path and the compiled kernels in
    # backward.
    edge_index = torch.tensor([[0, 0, 1, 2, 3, 3, 4, 4],
                               [3, 4, 3, 4, 0, 1, 0, 2]])
    graph = InteractionGraph(3, 2, torch.tensor([[0, 0, 1, 2], [0, 1, 0, 1]]))
    assert torch.equal(graph.edge_index.sort(1)[0], edge_index.sort(1)[0])
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64,
                    requires_grad=True)
    cu = torch.randn(3, 2, generator=g, dtype=torch.float64,
                     requires_grad=True)
    cv = torch.randn(3, 2, generator=g, dtype=torch.float64,
                     requires_grad=True)
    conv = IntentConv()
    for adj in (edge_index, graph.norm_adj(dtype=torch.float64),
                graph.norm_adj(dtype=torch.float64).to_dense().to_sparse_csr()):
        assert torch.autograd.gradcheck(
            lambda x, cu, cv: tuple(conv(x, adj, 3, cu, cv)), (x, cu, cv),
            fast_mode=True)


def test_intent_conv_no_edges_and_nan(ext):
    x = torch.randn(4, 3, dtype=torch.float64)
    cu = torch.randn(3, 2, dtype=torch.float64)
    cv = torch.randn(3, 2, dtype=torch.float64)
    conv = IntentConv()
    empty = torch.zeros(2, 0, dtype=torch.long)
    adj = torch.sparse_csr_tensor(torch.zeros(5, dtype=torch.long),
                                  torch.zeros(0, dtype=torch.long),
                                  torch.zeros(0, dtype=torch.float64), (4, 4))
    for a in (empty, adj):
        out = conv(x, a, 2, cu, cv)
        assert out.graph.abs().sum() == 0 and out.graph_aug.abs().sum() == 0
        torch.testing.assert_close(out.out, x + out.intent)
    # NaN is propagated, never hidden by the mask normalisation.
    graph, x, cu, cv = toy()
    x[0, 0] = float('nan')
    out = conv(x, graph.norm_adj(dtype=torch.float64), NUM_USERS, cu, cv)
    assert torch.isnan(out.graph_aug[3]).all()  # user 3 neighbours item 0
    assert torch.isnan(out.out).any()


def test_intent_conv_bad_input():
    graph, x, cu, cv = toy()
    conv = IntentConv()
    adj = graph.norm_adj(dtype=torch.float64)
    with pytest.raises(ValueError, match="'IntentConv' expects node features"):
        conv(x[:, 0], adj, NUM_USERS, cu, cv)
    for bad in (-1, x.size(0) + 1):
        with pytest.raises(ValueError, match='num_users'):
            conv(x, adj, bad, cu, cv)
    with pytest.raises(ValueError, match='user_intents'):
        conv(x, adj, NUM_USERS, cu[:-1], cv)
    with pytest.raises(ValueError, match='item_intents'):
        conv(x, adj, NUM_USERS, cu, cv.t())
    with pytest.raises(ValueError, match='adjacency is 8x8'):
        small = adj.to_dense()[:8, :8].to_sparse_csr()
        conv(x, small, NUM_USERS, cu, cv)
    with pytest.raises(ValueError, match='edge_weight'):
        conv(x, adj, NUM_USERS, cu, cv, torch.ones(18))
    with pytest.raises(ValueError, match='edge_index must have shape'):
        conv(x, graph.edge_index.t(), NUM_USERS, cu, cv)


def test_intent_conv_marks_only_symmetric_inputs():
    # A symmetric-marked input is read as having a symmetric pattern; an
    # unmarked one is handled as a general (directed) matrix.
    graph, x, cu, cv = toy()
    a_hat = graph.norm_adj(dtype=torch.float64).to_dense()
    plain = a_hat.to_sparse_csr()
    marked = mark_symmetric(a_hat.to_sparse_csr())
    conv = IntentConv()
    g1 = grads(lambda x, cu, cv: conv(x, plain, NUM_USERS, cu, cv), x, cu, cv)
    g2 = grads(lambda x, cu, cv: conv(x, marked, NUM_USERS, cu, cv),
               x, cu, cv)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
