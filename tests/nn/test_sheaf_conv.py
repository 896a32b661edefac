import pytest
import torch
from graphs import clustered_graph
from torch.func import functional_call

from pyg_recsys.data import InteractionGraph
from pyg_recsys.nn import MostPopular, Sheaf4Rec, SheafConv
from pyg_recsys.train import TrainConfig, Trainer

CONFIGS = [(1, 'diag'), (2, 'diag'), (2, 'general'), (3, 'general')]


def toy_edge_index():
    # Bipartite: users 0-2, items 3-6; both directions, in a scrambled order.
    pairs = [(0, 3), (0, 4), (1, 4), (1, 5), (1, 6), (2, 3), (2, 6)]
    edges = [p for a, b in pairs for p in ((a, b), (b, a))]
    perm = torch.randperm(len(edges), generator=torch.Generator().manual_seed(1))
    return torch.tensor(edges).t()[:, perm].contiguous()


NUM_NODES = 8  # node 7 is isolated


def make_conv(s, support, f=2, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    conv = SheafConv(s * f, s, support).to(dtype)
    with torch.no_grad():  # larger map weights so that tanh is not ~linear
        conv.sheaf_learner.weight.mul_(3.0)
        conv.lin.bias.normal_()
    return conv


# ----------------------------------------------------------------------
# Dense float64 references, by explicit loops over the edges.
def ref_maps(conv, x, edge_index):
    r"""{(a, b): F_{a<e}} as s x s matrices, from [x_a || x_b]."""
    s, w = conv.stalk_dim, conv.sheaf_learner.weight
    maps = {}
    for a, b in edge_index.t().tolist():
        v = torch.tanh(w @ torch.cat([x[a], x[b]]))
        if s == 1:
            m = v.view(1, 1)
        elif conv.support == 'diag':
            m = torch.diag(v)
        else:
            m = v.view(s, s)
        maps[(a, b)] = m
    return maps


def dense_laplacian(maps, n, s):
    L = torch.zeros(n * s, n * s, dtype=torch.float64)
    for (a, b), fa in maps.items():
        fb = maps[(b, a)]
        L[a * s:(a + 1) * s, b * s:(b + 1) * s] += -fa.t() @ fb
        L[a * s:(a + 1) * s, a * s:(a + 1) * s] += fa.t() @ fa
    return L


def normalise(L, n, s):
    # S = (diag of the diagonal blocks + 1)^{-1/2}, elementwise.
    blocks = torch.zeros(n * s, dtype=torch.float64)
    for a in range(n):
        blocks[a * s:(a + 1) * s] = torch.diagonal(
            L[a * s:(a + 1) * s, a * s:(a + 1) * s])
    S = torch.diag((blocks + 1.0).pow(-0.5))
    return S @ L @ S


def dense_layer(conv, x, edge_index, maps=None):
    n, s, f = x.size(0), conv.stalk_dim, conv.num_channels
    maps = ref_maps(conv, x, edge_index) if maps is None else maps
    Lt = normalise(dense_laplacian(maps, n, s), n, s)
    y = x.view(n, s, f) @ conv.lin.weight.t() + conv.lin.bias
    return (x.view(n * s, f) - Lt @ y.reshape(n * s, f)).view(n, s * f)


def layer_laplacian(conv, x, edge_index):
    r"""The layer's own normalised Laplacian, assembled densely."""
    n, s = x.size(0), conv.stalk_dim
    struct = conv.structure(edge_index, n)
    diag, value = conv.laplacian_blocks(conv.restriction_maps(x, struct),
                                        struct)
    crow = struct.pattern.crow_indices()
    rows = torch.repeat_interleave(torch.arange(n * s), crow.diff())
    Lt = torch.zeros(n * s, n * s, dtype=torch.float64)
    Lt[rows, struct.pattern.col_indices()] = value
    for a in range(n):
        blk = slice(a * s, (a + 1) * s)
        if diag.dim() == 3:
            Lt[blk, blk] = diag[a]
        else:
            Lt[blk, blk] = torch.diag(diag[a].reshape(-1))
    return Lt


# ----------------------------------------------------------------------
@pytest.mark.parametrize('s,support', CONFIGS)
def test_laplacian_is_symmetric_psd_and_matches_dense(s, support):
    conv = make_conv(s, support)
    ei = toy_edge_index()
    x = torch.randn(NUM_NODES, conv.channels, dtype=torch.float64)
    L = dense_laplacian(ref_maps(conv, x, ei), NUM_NODES, s)
    for M in (L, normalise(L, NUM_NODES, s)):
        torch.testing.assert_close(M, M.t())
        assert torch.linalg.eigvalsh(M).min() > -1e-12
    # The maps are not trivial (tanh of a non-zero argument).
    assert not torch.allclose(L, torch.zeros_like(L))
    mine = layer_laplacian(conv, x, ei)
    torch.testing.assert_close(mine, normalise(L, NUM_NODES, s))
    # The layer's Laplacian is exactly symmetric (its pattern is used as its
    # own transpose in backward).
    torch.testing.assert_close(mine, mine.t(), rtol=0, atol=0)


@pytest.mark.parametrize('s,support', CONFIGS)
def test_layer_equals_dense_formula(s, support, ext):
    conv = make_conv(s, support)
    ei = toy_edge_index()
    x = torch.randn(NUM_NODES, conv.channels, dtype=torch.float64)
    out = conv(x, ei)
    torch.testing.assert_close(out, dense_layer(conv, x, ei))
    # The isolated node is unchanged (its Laplacian row is zero).
    torch.testing.assert_close(out[7], x[7])
    # Float32 runs too.
    conv32 = conv.float()
    torch.testing.assert_close(conv32(x.float(), ei), out.float(),
                               rtol=1e-4, atol=1e-5)


def test_maps_come_from_source_then_target_features():
    conv = make_conv(2, 'general')
    ei = toy_edge_index()
    x = torch.randn(NUM_NODES, conv.channels, dtype=torch.float64)
    edges, maps = conv.maps(x, ei)
    assert maps.shape == (ei.size(1), 2, 2)
    ref = ref_maps(conv, x, ei)
    keys = (edges[0] * NUM_NODES + edges[1]).tolist()
    assert keys == sorted(keys)
    for (a, b), m in zip(edges.t().tolist(), maps):
        torch.testing.assert_close(m, ref[(a, b)])


def test_unit_maps_give_renormalised_gcn_propagation():
    ei = toy_edge_index()
    n = NUM_NODES
    conv = SheafConv(3).double()
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(3))
        conv.lin.bias.zero_()
    x = torch.randn(n, 3, dtype=torch.float64)
    ones = torch.ones(ei.size(1), dtype=torch.float64)
    out = conv(x, ei, maps=ones)
    A = torch.zeros(n, n, dtype=torch.float64)
    A[ei[0], ei[1]] = 1.0
    D = A.sum(1)
    S = torch.diag((D + 1.0).pow(-0.5))
    eye = torch.eye(n, dtype=torch.float64)
    # x - (D+I)^{-1/2} (D - A) (D+I)^{-1/2} x = (D+I)^{-1/2} (A+I) (D+I)^{-1/2} x
    # exactly, since x = (D+I)^{-1/2} (D+I) (D+I)^{-1/2} x.
    torch.testing.assert_close(out, S @ (A + eye) @ S @ x)
    torch.testing.assert_close(out, x - S @ (torch.diag(D) - A) @ S @ x)
    # The diagonal of the normalised Laplacian is D / (D + 1).
    struct = conv.structure(ei, n)
    diag, value = conv.laplacian_blocks(ones, struct)
    torch.testing.assert_close(diag, D / (D + 1))
    # Off-diagonal entries: -1 / sqrt((D_a + 1)(D_b + 1)).
    torch.testing.assert_close(
        value, -((D[struct.row] + 1) * (D[struct.col] + 1)).rsqrt())


@pytest.mark.parametrize('s,support', [(1, 'diag'), (2, 'diag'),
                                       (2, 'general')])
def test_gradcheck(s, support, ext):
    conv = make_conv(s, support, f=2)
    ei = toy_edge_index()
    x = torch.randn(NUM_NODES, conv.channels, dtype=torch.float64,
                    requires_grad=True)
    names = ['sheaf_learner.weight', 'lin.weight', 'lin.bias']
    params = [dict(conv.named_parameters())[k].detach().clone()
              .requires_grad_() for k in names]

    def fn(x, *p):
        return functional_call(conv, dict(zip(names, p)), (x, ei))

    assert torch.autograd.gradcheck(fn, (x, *params))

    # Gradients of given maps too.
    shape = (ei.size(1), *conv.map_shape)
    maps = (0.5 * torch.randn(shape, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, m: conv(x, ei, maps=m),
                                    (x, maps))


@pytest.mark.parametrize('s,support', [(1, 'diag'), (2, 'general')])
def test_edge_index_and_sparse_inputs_agree(s, support):
    conv = make_conv(s, support)
    ei = toy_edge_index()
    n = NUM_NODES
    x = torch.randn(n, conv.channels, dtype=torch.float64)
    out = conv(x, ei)
    value = torch.rand(ei.size(1), dtype=torch.float64)  # not used
    coo = torch.sparse_coo_tensor(ei, value, (n, n), check_invariants=True)
    csr = coo.coalesce().to_sparse_csr()
    torch.testing.assert_close(conv(x, coo), out)
    torch.testing.assert_close(conv(x, csr), out)
    # Another edge order gives the same output.
    perm = torch.randperm(ei.size(1))
    torch.testing.assert_close(conv(x, ei[:, perm]), out)
    # Given maps follow the input order.
    shape = (ei.size(1), *conv.map_shape)
    maps = torch.randn(shape, dtype=torch.float64)
    ref = conv(x, ei, maps=maps)
    torch.testing.assert_close(conv(x, ei[:, perm], maps=maps[perm]), ref)
    # Dense reference with the given maps.
    given = {}
    for (a, b), m in zip(ei.t().tolist(), maps):
        given[(a, b)] = m.view(1, 1) if s == 1 else (
            torch.diag(m) if m.dim() == 1 else m)
    torch.testing.assert_close(ref, dense_layer(conv, x, ei, given))
    # The graph's normalised adjacency (the Trainer's input) too.
    graph = InteractionGraph(3, 5, torch.tensor([[0, 0, 1, 1, 1, 2, 2],
                                                 [0, 1, 1, 2, 3, 0, 3]]))
    torch.testing.assert_close(conv(x, graph.norm_adj(torch.float64)),
                               conv(x, graph.edge_index))


def test_errors():
    conv = SheafConv(4, 2)
    x = torch.randn(4, 4)
    with pytest.raises(ValueError, match=r'edge \(0, 1\) has no reverse '
                                         r'edge \(1, 0\)'):
        conv(x, torch.tensor([[0, 1, 2], [1, 2, 1]]))
    with pytest.raises(ValueError, match='repeated'):
        conv(x, torch.tensor([[0, 1, 0], [1, 0, 1]]))
    with pytest.raises(ValueError, match='self-loops'):
        conv(x, torch.tensor([[0, 1, 2], [1, 0, 2]]))
    with pytest.raises(ValueError, match='outside'):
        conv(x, torch.tensor([[0, 9], [9, 0]]))
    with pytest.raises(ValueError, match=r'multiple of stalk_dim=2'):
        SheafConv(5, 2)
    with pytest.raises(ValueError, match=r'multiple of stalk_dim=4'):
        Sheaf4Rec(3, 4, embedding_dim=6, stalk_dim=4)
    with pytest.raises(ValueError, match='support'):
        SheafConv(4, 2, 'full')
    with pytest.raises(ValueError, match=r'shape \[num_nodes, 4\]'):
        conv(torch.randn(4, 3), torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="'maps' must have shape"):
        conv(x, torch.tensor([[0, 1], [1, 0]]), maps=torch.ones(2))
    with pytest.raises(ValueError, match='4x4 but there are 3'):
        conv(torch.randn(3, 4), torch.eye(4).to_sparse_csr())
    with pytest.raises(ValueError, match='flow'):
        SheafConv(4, flow='target_to_source')
    with pytest.raises(ValueError, match='readout'):
        Sheaf4Rec(3, 4, readout='sum')
    with pytest.raises(ValueError, match='adjacency'):
        Sheaf4Rec(3, 4, 8, 1).get_embedding(None)


def test_repr_cache_and_empty_graph():
    conv = SheafConv(4, 2, 'general', cached=True)
    assert str(conv) == "SheafConv(4, stalk_dim=2, support='general')"
    ei = torch.tensor([[0, 1], [1, 0]])
    x = torch.randn(3, 4)
    conv(x, ei)
    struct = conv._cached[1]
    assert conv.structure(ei, 3) is struct
    assert conv.structure(ei.clone(), 3) is not struct  # another object
    conv.reset_parameters()
    assert conv._cached is None
    empty = torch.empty(2, 0, dtype=torch.long)
    torch.testing.assert_close(SheafConv(4, 2)(x, empty), x)


def test_sheaf4rec_embeddings_and_forward():
    graph = clustered_graph()
    torch.manual_seed(0)
    model = Sheaf4Rec(40, 30, embedding_dim=8, num_layers=2, stalk_dim=2,
                      support='general')
    assert str(model) == ("Sheaf4Rec(40, 30, embedding_dim=8, num_layers=2, "
                          "stalk_dim=2, support='general', readout='cat')")
    user, item = model.split_embedding(model.get_embedding(graph.norm_adj()))
    assert user.shape == (40, 24) and item.shape == (30, 24)
    assert model.output_dim == 24
    out = model.get_embedding(graph.edge_index)
    torch.testing.assert_close(torch.cat([user, item]), out)
    # Layer 0 is the ego table; layer 1 the first SheafConv's output.
    x0 = model.embedding.weight
    torch.testing.assert_close(out[:, :8], x0)
    torch.testing.assert_close(out[:, 8:16],
                               model.convs[0](x0, graph.edge_index))
    scores = model(graph.edge_index)
    assert scores.shape == (graph.edge_index.size(1), )
    maps = model.restriction_maps(graph.norm_adj())
    assert len(maps) == 2 and maps[0][1].shape == (
        graph.edge_index.size(1), 2, 2)
    mean = Sheaf4Rec(40, 30, embedding_dim=8, num_layers=2, readout='mean')
    xs = mean.propagate_layers(graph.edge_index)
    torch.testing.assert_close(mean.get_embedding(graph.edge_index),
                               torch.stack(xs).mean(0))


@pytest.mark.parametrize('s,support', [(1, 'diag'), (2, 'general')])
def test_sheaf4rec_trains_and_beats_most_popular(s, support):
    graph = clustered_graph()
    cfg = TrainConfig(epochs=30, batch_size=64, lr=0.01, eval_every=5,
                      patience=3, monitor='recall@10', ks=(5, 10), seed=0)
    torch.manual_seed(0)
    model = Sheaf4Rec(40, 30, embedding_dim=16, num_layers=2, stalk_dim=s,
                      support=support)
    report = Trainer(model, graph, cfg, progress=False).fit()
    pop = Trainer(MostPopular(graph.item_degree(), 40), graph, cfg,
                  progress=False).fit()
    assert report['test']['recall@10'] > pop['test']['recall@10'] + 0.1
