from pyg_recsys.nn.conv.light_conv import LightConv

__all__ = ['LightConv']
