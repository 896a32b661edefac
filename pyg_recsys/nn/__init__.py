from typing import TYPE_CHECKING

from pyg_recsys._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from pyg_recsys.nn import loss  # noqa: F401
    from pyg_recsys.nn.conv import (  # noqa: F401
        BehaviorConv,
        BGCFAttentionConv,
        BGCFMeanConv,
        IntentConv,
        LightConv,
        SheafConv,
    )
    from pyg_recsys.nn.models import (  # noqa: F401
        BGCF,
        DCCF,
        GTE,
        MF,
        BayesianRecommender,
        LightGCN,
        MostPopular,
        ScoreEnsemble,
        Sheaf4Rec,
        SimpleX,
        UltraGCN,
    )

__all__ = ['LightConv', 'IntentConv', 'SheafConv', 'BGCFMeanConv',
           'BGCFAttentionConv', 'LightGCN', 'DCCF', 'MF',
           'MostPopular', 'Sheaf4Rec', 'GTE', 'BayesianRecommender', 'BGCF',
           'BehaviorConv', 'SimpleX', 'UltraGCN', 'ScoreEnsemble', 'loss']
__getattr__, __dir__ = lazy_exports(__name__, {
    'loss': 'pyg_recsys.nn.loss',
    **{name: 'pyg_recsys.nn.conv' for name in
       ('LightConv', 'IntentConv', 'SheafConv', 'BGCFMeanConv',
        'BGCFAttentionConv', 'BehaviorConv')},
    **{name: 'pyg_recsys.nn.models' for name in
       ('LightGCN', 'DCCF', 'MF', 'MostPopular', 'Sheaf4Rec', 'GTE',
        'BayesianRecommender', 'BGCF', 'SimpleX', 'UltraGCN',
        'ScoreEnsemble')},
})
