from pyg_recsys.nn import loss
from pyg_recsys.nn.conv import LightConv
from pyg_recsys.nn.models import MF, LightGCN, MostPopular

__all__ = ['LightConv', 'LightGCN', 'MF', 'MostPopular', 'loss']
