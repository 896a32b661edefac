import torch
from torch_geometric.nn import LGConv
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

from pyg_recsys.nn import LightConv


def test_light_conv_equals_lgconv():
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 3], [1, 0, 2, 1, 1, 0]])
    weight = torch.rand(edge_index.size(1))
    x = torch.randn(4, 8)
    conv = LightConv()
    assert str(conv) == 'LightConv(normalize=True, cached=False)'
    for w in (None, weight):
        expected = LGConv()(x, edge_index, w)
        torch.testing.assert_close(conv(x, edge_index, w), expected)
        adj_t = to_torch_csr_tensor(edge_index.flip(0), w, size=(4, 4))
        torch.testing.assert_close(conv(x, adj_t), expected)
        torch.testing.assert_close(conv(x, adj_t), LGConv()(x, adj_t))
        coo = to_torch_coo_tensor(edge_index.flip(0), w, size=(4, 4))
        torch.testing.assert_close(conv(x, coo), expected)
    # Without normalisation it is a plain weighted sum.
    out = LightConv(normalize=False)(x, edge_index, weight)
    torch.testing.assert_close(
        out, LGConv(normalize=False)(x, edge_index, weight))


def test_light_conv_cached_and_grad():
    edge_index = torch.tensor([[0, 1, 2, 1], [1, 0, 1, 2]])
    x = torch.randn(3, 4, requires_grad=True)
    conv = LightConv(cached=True)
    out1 = conv(x, edge_index)
    out2 = conv(x, edge_index[:, :2])  # cache wins while set
    torch.testing.assert_close(out1, out2)
    conv.reset_parameters()
    assert conv._cached is None
    adj_t = to_torch_csr_tensor(edge_index.flip(0), size=(3, 3))
    x2 = x.detach().clone().requires_grad_()
    LightConv()(x, edge_index).pow(2).sum().backward()
    LightConv()(x2, adj_t).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
