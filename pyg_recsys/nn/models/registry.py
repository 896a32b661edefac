r"""Models by name, for the Trainer and the :obj:`pyg-recsys` command.

A builder takes the :class:`~pyg_recsys.data.InteractionGraph` and the
model's keyword arguments and returns the model. A user's model registers the
same way as the package's own:

.. code-block:: python

    from pyg_recsys.nn.models import EmbeddingRecommender, register_model

    @register_model('my-mf')
    class MyMF(EmbeddingRecommender):
        def __init__(self, num_users, num_items, embedding_dim=64):
            super().__init__(num_users, num_items, embedding_dim)
            self.reset_parameters()

        def get_embedding(self, edge_index=None, edge_weight=None):
            return self.embedding.weight

A class is built as :obj:`cls(num_users=U, num_items=I, **kwargs)`, or by
its :obj:`from_graph(graph, **kwargs)` when it has one.
"""
import inspect
from typing import Callable, Dict, List, Optional

Builder = Callable[..., object]
_REGISTRY: Dict[str, Builder] = {}


def register_model(name: str, builder: Optional[Builder] = None,
                   overwrite: bool = False):
    r"""Registers :obj:`builder` (a model class or a function
    :obj:`(graph, **kwargs) -> model`) under :obj:`name`; usable as a
    decorator. Raises if :obj:`name` is taken, unless :obj:`overwrite`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_model: the name must be a non-empty "
                         f"string, got {name!r}")

    def add(fn: Builder) -> Builder:
        if not callable(fn):
            raise TypeError(f"register_model: '{name}' must be a class or a "
                            f"function, got {type(fn).__name__}")
        _builtins()
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not fn:
            raise ValueError(f"register_model: a model named '{name}' is "
                             f"already registered (pass overwrite=True)")
        _REGISTRY[name] = fn
        return fn

    return add if builder is None else add(builder)


def list_models() -> List[str]:
    r"""The registered model names, built-in ones first."""
    _builtins()
    return list(_REGISTRY)


def name_of(model) -> Optional[str]:
    r"""The registered name whose class :obj:`model` is an instance of
    (exactly), or :obj:`None`."""
    _builtins()
    if getattr(model, 'checkpoint_model', None) in _REGISTRY:
        return model.checkpoint_model  # e.g. ShardedMF saved as 'mf'
    cls = type(model)
    path = f'{cls.__module__}.{cls.__qualname__}'
    for key, fn in _REGISTRY.items():
        if fn is cls or getattr(fn, 'model_class', None) == path:
            return key
    return None


def build_model(name: str, graph, **kwargs):
    r"""Instantiates model :obj:`name` for :obj:`graph`; an unknown name or
    argument raises :class:`ValueError` naming it."""
    _builtins()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model '{name}' (registered: "
                         f"{', '.join(_REGISTRY)})")
    fn = _REGISTRY[name]
    if inspect.isclass(fn):
        if hasattr(fn, 'from_graph'):
            return fn.from_graph(graph, **kwargs)
        _check_kwargs(name, fn.__init__, kwargs)
        return fn(num_users=graph.num_users, num_items=graph.num_items,
                  **kwargs)
    return fn(graph, **kwargs)


def _check_kwargs(name: str, fn, kwargs: dict) -> None:
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    known = {p.name for p in params} - {'self', 'num_users', 'num_items'}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"model '{name}' takes no argument "
                         f"{', '.join(map(repr, unknown))} (it takes: "
                         f"{', '.join(sorted(known))})")


# ----------------------------------------------------------------------------
def _model(module: str, cls: str) -> Builder:
    def build(graph, **kwargs):
        import importlib
        klass = getattr(importlib.import_module(
            f'pyg_recsys.nn.models.{module}'), cls)
        _check_kwargs(cls, klass.__init__, kwargs)
        return klass(num_users=graph.num_users, num_items=graph.num_items,
                     **kwargs)
    build.__name__ = f'build_{module}'
    build.model_class = f'pyg_recsys.nn.models.{module}.{cls}'
    return build


def _gte(graph, **kwargs):
    from pyg_recsys.nn.models.gte import GTE
    return GTE.from_graph(graph, **kwargs)


def _mostpop(graph, **kwargs):
    from pyg_recsys.nn.models.mf import MostPopular
    if kwargs:
        raise ValueError(f"model 'mostpop' takes no arguments, got "
                         f"{sorted(kwargs)}")
    return MostPopular(graph.item_degree(), graph.num_users)


def _bayes_lightgcn(graph, num_samples: int = 4,
                    resample_every: Optional[int] = None, seed: int = 0,
                    generator: str = 'peco',
                    generator_kwargs: Optional[dict] = None, **kwargs):
    r""":class:`~pyg_recsys.nn.models.BayesianRecommender` around a
    :class:`~pyg_recsys.nn.models.LightGCN` (the other arguments) on graphs
    of :obj:`generator` (:obj:`'node_copy'` or :obj:`'peco'`, fitted to the
    training split with :obj:`generator_kwargs`); :obj:`resample_every`
    defaults to the steps of one epoch at batch size 2048. The model sees
    sampled graphs only, so a user's items are replaced with probability
    0.1 (:obj:`replace_prob`) unless :obj:`generator_kwargs` set
    :obj:`epsilon` (BGCF's probability of keeping them) or
    :obj:`replace_prob`."""
    from pyg_recsys.data.graph_generators import build_generator
    from pyg_recsys.nn.models.bayesian import BayesianRecommender
    if resample_every is None:
        resample_every = -(-graph.train.size(1) // 2048)
    gen_kwargs = dict(generator_kwargs or {})
    if 'epsilon' not in gen_kwargs:
        gen_kwargs.setdefault('replace_prob', 0.1)
    gen = build_generator(generator, graph, **gen_kwargs)
    return BayesianRecommender(_model('lightgcn', 'LightGCN')(graph, **kwargs),
                               gen,
                               num_samples=num_samples,
                               resample_every=resample_every, seed=seed)


def _bgcf(graph, generator: str = 'node_copy',
          generator_kwargs: Optional[dict] = None, **kwargs):
    r""":class:`~pyg_recsys.nn.models.BGCF` with :obj:`generator`
    (:obj:`'node_copy'`, BGCF's, or :obj:`'peco'`) fitted to the training
    split with :obj:`generator_kwargs` (default: BGCF's
    :math:`\epsilon = 0.01`, top 10 users)."""
    from pyg_recsys.data.graph_generators import build_generator
    from pyg_recsys.nn.models.bgcf import BGCF
    gen = build_generator(generator, graph, **(generator_kwargs or {}))
    return BGCF(graph.num_users, graph.num_items, gen, **kwargs)


def _ultragcn(graph, **kwargs):
    r""":class:`~pyg_recsys.nn.models.UltraGCN` with its constraint weights
    and item-item graph computed from the training split."""
    from pyg_recsys.nn.models.ultragcn import UltraGCN
    _check_kwargs('UltraGCN', UltraGCN.__init__, kwargs)
    model = UltraGCN(graph.num_users, graph.num_items, **kwargs)
    return model.set_interactions(*graph.train)


_BUILTINS = {
    'lightgcn': _model('lightgcn', 'LightGCN'),
    'dccf': _model('dccf', 'DCCF'),
    'sheaf4rec': _model('sheaf4rec', 'Sheaf4Rec'),
    'gte': _gte,
    'bayes-lightgcn': _bayes_lightgcn,
    'bgcf': _bgcf,
    'mf': _model('mf', 'MF'),
    'simplex': _model('simplex', 'SimpleX'),
    'ultragcn': _ultragcn,
    'mostpop': _mostpop,
}


def _builtins() -> None:
    for key, fn in _BUILTINS.items():
        _REGISTRY.setdefault(key, fn)
