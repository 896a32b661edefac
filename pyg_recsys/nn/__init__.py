from pyg_recsys.nn import loss
from pyg_recsys.nn.conv import IntentConv, LightConv
from pyg_recsys.nn.models import DCCF, MF, LightGCN, MostPopular

__all__ = ['LightConv', 'IntentConv', 'LightGCN', 'DCCF', 'MF', 'MostPopular',
           'loss']
