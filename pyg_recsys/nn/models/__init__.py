from pyg_recsys.nn.models.base import EmbeddingRecommender
from pyg_recsys.nn.models.dccf import DCCF
from pyg_recsys.nn.models.lightgcn import LightGCN
from pyg_recsys.nn.models.mf import MF, MostPopular

__all__ = ['EmbeddingRecommender', 'LightGCN', 'DCCF', 'MF', 'MostPopular']
