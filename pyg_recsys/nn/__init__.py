from pyg_recsys.nn.conv import LightConv
from pyg_recsys.nn.models import MF, LightGCN, MostPopular
from pyg_recsys.nn import loss

__all__ = ['LightConv', 'LightGCN', 'MF', 'MostPopular', 'loss']
