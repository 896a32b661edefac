from typing import TYPE_CHECKING

from pyg_recsys._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from pyg_recsys.nn.models.base import EmbeddingRecommender  # noqa: F401
    from pyg_recsys.nn.models.bayesian import BayesianRecommender  # noqa: F401
    from pyg_recsys.nn.models.bgcf import BGCF  # noqa: F401
    from pyg_recsys.nn.models.ctr import ClickSequenceDNN  # noqa: F401
    from pyg_recsys.nn.models.dccf import DCCF  # noqa: F401
    from pyg_recsys.nn.models.ensemble import ScoreEnsemble  # noqa: F401
    from pyg_recsys.nn.models.gte import GTE, topological_closeness  # noqa: F401
    from pyg_recsys.nn.models.item_sources import (  # noqa: F401
        item2vec,
        item_vectors,
        transition_graph,
    )
    from pyg_recsys.nn.models.lightgcn import LightGCN  # noqa: F401
    from pyg_recsys.nn.models.mf import MF, MostPopular  # noqa: F401
    from pyg_recsys.nn.models.registry import build_model, list_models, register_model  # noqa: F401
    from pyg_recsys.nn.models.sequential import (  # noqa: F401
        MostPopularNext,
        SequentialUserRNN,
        TasteVector,
    )
    from pyg_recsys.nn.models.sheaf4rec import Sheaf4Rec  # noqa: F401
    from pyg_recsys.nn.models.simplex import SimpleX  # noqa: F401
    from pyg_recsys.nn.models.ultragcn import UltraGCN  # noqa: F401
    from pyg_recsys.nn.models.text import (  # noqa: F401
        TextAlign,
        TextFusion,
        TextRegularizedLightGCN,
        TextZeroShot,
    )

_WHERE = {'EmbeddingRecommender': 'base',
          'BayesianRecommender': 'bayesian', 'BGCF': 'bgcf', 'DCCF': 'dccf',
          'ScoreEnsemble': 'ensemble',
          'GTE': 'gte',
          'topological_closeness': 'gte', 'LightGCN': 'lightgcn', 'MF': 'mf',
          'MostPopular': 'mf', 'Sheaf4Rec': 'sheaf4rec', 'SimpleX': 'simplex',
          'UltraGCN': 'ultragcn',
          'build_model': 'registry', 'list_models': 'registry',
          'register_model': 'registry', 'SequentialUserRNN': 'sequential',
          'TasteVector': 'sequential', 'MostPopularNext': 'sequential',
          'item_vectors': 'item_sources', 'item2vec': 'item_sources',
          'transition_graph': 'item_sources', 'TextZeroShot': 'text',
          'TextAlign': 'text', 'TextFusion': 'text',
          'TextRegularizedLightGCN': 'text', 'ClickSequenceDNN': 'ctr'}
__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(
    __name__, {name: f'{__name__}.{module}' for name, module in
               _WHERE.items()})
