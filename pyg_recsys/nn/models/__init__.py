from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.nn.models.dccf import DCCF
from pyg_recsys.nn.models.gte import GTE, topological_closeness
from pyg_recsys.nn.models.lightgcn import LightGCN
from pyg_recsys.nn.models.mf import MF, MostPopular
from pyg_recsys.nn.models.sheaf4rec import Sheaf4Rec

__all__ = ['EmbeddingRecommender', 'LightGCN', 'DCCF', 'MF', 'MostPopular',
           'Sheaf4Rec', 'GTE', 'topological_closeness']
