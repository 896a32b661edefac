from pyg_recsys.nn import loss
from pyg_recsys.nn.conv import IntentConv, LightConv, SheafConv
from pyg_recsys.nn.models import DCCF, GTE, MF, LightGCN, MostPopular, Sheaf4Rec

__all__ = ['LightConv', 'IntentConv', 'SheafConv', 'LightGCN', 'DCCF', 'MF',
           'MostPopular', 'Sheaf4Rec', 'GTE', 'loss']
