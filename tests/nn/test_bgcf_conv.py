import pytest
import torch

from pyg_recsys.nn.conv import BGCFAttentionConv, BGCFMeanConv


def bipartite(seed=0):
    g = torch.Generator().manual_seed(seed)
    x_src = torch.randn(6, 4, generator=g, dtype=torch.float64)
    x_dst = torch.randn(4, 4, generator=g, dtype=torch.float64)
    # Target 0 draws source 2 twice (sampling with replacement); target 3
    # has no edge.
    edge_index = torch.tensor([[2, 2, 5, 0, 1, 4, 3],
                               [0, 0, 0, 1, 2, 2, 2]])
    return x_src, x_dst, edge_index


def ref_mean(conv, x_src, x_dst, edge_index, act=torch.tanh):
    w = conv.lin.weight
    out = []
    for i in range(x_dst.size(0)):
        srcs = [int(j) for j, t in zip(edge_index[0], edge_index[1])
                if int(t) == i]
        mean = (torch.stack([x_src[j] for j in srcs]).mean(0) if srcs
                else torch.zeros(x_src.size(1), dtype=x_src.dtype))
        out.append(act(w @ torch.cat([x_dst[i], mean])))
    return torch.stack(out)


def ref_attention(conv, x_src, x_dst, edge_index):
    w = conv.lin.weight
    out = []
    for i in range(x_dst.size(0)):
        srcs = [int(j) for j, t in zip(edge_index[0], edge_index[1])
                if int(t) == i]
        agg = torch.zeros(x_src.size(1), dtype=x_src.dtype)
        if srcs:
            scores = torch.stack([x_dst[i] @ x_src[j] for j in srcs])
            alpha = torch.exp(scores) / torch.exp(scores).sum()
            for a, j in zip(alpha, srcs):
                agg = agg + a * x_src[j]
        out.append(w @ torch.cat([agg, x_dst[i]]))
    return torch.stack(out)


@pytest.mark.parametrize('act', ['tanh', 'relu'])
def test_mean_conv_matches_loop(act):
    x_src, x_dst, edge_index = bipartite()
    conv = BGCFMeanConv(4, 3, dropout=0.3, act=act).double().eval()
    assert str(conv) == f'BGCFMeanConv(4, 3, dropout=0.3, act={act})'
    out = conv((x_src, x_dst), edge_index)
    fn = torch.tanh if act == 'tanh' else torch.relu
    assert torch.allclose(out, ref_mean(conv, x_src, x_dst, edge_index, fn))
    assert out.shape == (4, 3)
    # Without dropout, training and evaluation agree; with it they do not.
    conv0 = BGCFMeanConv(4, 3).double().train()
    conv0.load_state_dict(conv.state_dict())
    assert torch.allclose(conv0((x_src, x_dst), edge_index),
                          conv0.eval()((x_src, x_dst), edge_index))
    torch.manual_seed(0)
    assert not torch.allclose(conv.train()((x_src, x_dst), edge_index), out)


def test_attention_conv_matches_loop_and_gradcheck():
    x_src, x_dst, edge_index = bipartite(1)
    conv = BGCFAttentionConv(4, 5, dropout=0.3).double().eval()
    assert str(conv) == 'BGCFAttentionConv(4, 5, dropout=0.3)'
    out = conv((x_src, x_dst), edge_index)
    assert torch.allclose(out, ref_attention(conv, x_src, x_dst, edge_index))
    # Target 3 has no neighbour: W [0 ; x_3].
    assert torch.allclose(out[3], conv.lin.weight[:, 4:] @ x_dst[3])
    x_src.requires_grad_()
    x_dst.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: conv((a, b), edge_index), (x_src, x_dst))


def test_attention_dropout_is_per_edge():
    # One target drawing the same source twice: with dropout the two copies
    # are dropped independently, so some draws keep exactly one of them.
    x = torch.ones(1, 8)
    conv = BGCFAttentionConv(8, 8, dropout=0.5).train()
    torch.nn.init.eye_(conv.lin.weight[:, :8])
    conv.lin.weight.data[:, 8:] = 0
    edge_index = torch.tensor([[0, 0], [0, 0]])
    torch.manual_seed(0)
    agg = torch.stack([conv((x, x), edge_index) for _ in range(200)])
    # Kept values are 2 (1 / (1 - p)); a slot kept in one copy only gives 2
    # times its softmax weight, strictly between 0 and 2.
    mid = ((agg > 1e-6) & (agg < 2 - 1e-6)).float().mean()
    assert 0.2 < float(mid) < 0.8


def test_homogeneous_input_and_errors():
    x = torch.randn(5, 4)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    for conv in (BGCFMeanConv(4, 2), BGCFAttentionConv(4, 2)):
        assert conv(x, edge_index).shape == (5, 2)
        with pytest.raises(ValueError, match='source ids must lie'):
            conv(x, torch.tensor([[7], [0]]))
        with pytest.raises(ValueError, match='shape'):
            conv((x, torch.randn(3, 2)), edge_index)
        with pytest.raises(ValueError, match=r'\[2, E\]'):
            conv(x, edge_index[0])
        assert conv(x, torch.empty(2, 0, dtype=torch.long)).shape == (5, 2)
    with pytest.raises(ValueError, match='act must be'):
        BGCFMeanConv(4, 2, act='gelu')
    with pytest.raises(ValueError, match='dropout must lie'):
        BGCFAttentionConv(4, 2, dropout=1.0)


@pytest.mark.parametrize('cls', [BGCFMeanConv, BGCFAttentionConv])
def test_fixed_neighbourhoods_equal_edge_index_path(cls):
    # Dense [n, k] draws (with repeats and an empty row) against the same
    # draws as edges; values and gradients.
    g = torch.Generator().manual_seed(3)
    x_src = torch.randn(7, 4, generator=g, dtype=torch.float64,
                        requires_grad=True)
    x_dst = torch.randn(3, 4, generator=g, dtype=torch.float64,
                        requires_grad=True)
    nbr = torch.tensor([[1, 1, 4, 6], [0, 2, 3, 3], [-1, -1, -1, -1]])
    mask = nbr >= 0
    conv = cls(4, 2).double().eval()
    dense = conv.forward_fixed(x_dst, x_src[nbr.clamp(min=0)], mask)
    keep = mask.nonzero()
    edge_index = torch.stack([nbr[mask], keep[:, 0]])
    sparse = conv((x_src, x_dst), edge_index)
    assert torch.allclose(dense, sparse)
    ga = torch.autograd.grad(dense.sum(), (x_src, x_dst))
    gb = torch.autograd.grad(sparse.sum(), (x_src, x_dst))
    assert all(torch.allclose(a, b) for a, b in zip(ga, gb))
    assert bool(torch.isfinite(ga[0]).all())
    full = conv.forward_fixed(x_dst[:2], x_src[nbr[:2]])  # no mask: all
    assert torch.allclose(full, dense[:2])
    with pytest.raises(ValueError, match=r'\[n, k, F\]'):
        conv.forward_fixed(x_dst, x_src)
    with pytest.raises(ValueError, match='mask must have shape'):
        conv.forward_fixed(x_dst, x_src[nbr.clamp(min=0)], mask[:, :2])
