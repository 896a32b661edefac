r"""Training configuration, named recipes and the model registry."""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

SELECT_RULES = ('valid', 'last', 'test')
LR_SCHEDULES = ('constant', 'cosine')
NEGATIVE_SAMPLING = ('uniform', 'dns')


@dataclass
class TrainConfig:
    r"""Everything that determines a training run besides model and data.

    Attributes:
        epochs (int): Maximum number of epochs.
        batch_size (int): BPR triples per optimiser step.
        lr (float): Adam learning rate.
        lr_schedule (str): :obj:`'constant'` or :obj:`'cosine'` (annealed
            per epoch from :obj:`lr` to 0 at :obj:`epochs`).
        lambda_reg (float): L2 strength on the batch's ego embeddings.
        reg_scaling (str): :obj:`'lightgcn'`, :obj:`'dccf'` or :obj:`'pyg'`
            (see :mod:`pyg_recsys.nn.loss`).
        sampler (str): :obj:`'per_user'` or :obj:`'per_interaction'`.
        num_negatives (int): Negatives per positive; with
            :obj:`negative_sampling='dns'`, the candidates per positive.
        negative_sampling (str): :obj:`'uniform'` (every sampled negative
            enters the loss) or :obj:`'dns'` (dynamic negative sampling: of
            :obj:`num_negatives` uniform candidates, the one the current
            model scores highest).
        eval_every (int): Evaluate every this many epochs.
        patience (int): Stop after this many evaluations without improvement
            of :obj:`monitor` (0 disables early stopping).
        monitor (str): Metric that selects the model, e.g. :obj:`'ndcg@10'`.
        select (str): Which model is reported: :obj:`'valid'` (best on the
            validation split; the default when one exists), :obj:`'last'`
            (final epoch) or :obj:`'test'` (best on test, the protocol of some
            papers; reported as such, never silently).
        ks (tuple): Cut-offs of the metrics.
        seed (int): Seed of model init, sampler and everything random.
        threads (int, optional): :func:`torch.set_num_threads` value.
        eval_batch_size (int, optional): Users per evaluation batch.
    """
    epochs: int = 200
    batch_size: int = 2048
    lr: float = 1e-3
    lr_schedule: str = 'constant'
    lambda_reg: float = 1e-4
    reg_scaling: str = 'lightgcn'
    sampler: str = 'per_user'
    num_negatives: int = 1
    negative_sampling: str = 'uniform'
    eval_every: int = 5
    patience: int = 10
    monitor: str = 'ndcg@10'
    select: str = 'valid'
    ks: Tuple[int, ...] = (10, 20)
    seed: int = 0
    threads: Optional[int] = None
    eval_batch_size: Optional[int] = None

    def __post_init__(self):
        self.ks = tuple(int(k) for k in self.ks)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig: lr_schedule must be one of "
                             f"{LR_SCHEDULES}, got '{self.lr_schedule}'")
        if self.negative_sampling not in NEGATIVE_SAMPLING:
            raise ValueError(f"TrainConfig: negative_sampling must be one of "
                             f"{NEGATIVE_SAMPLING}, got "
                             f"'{self.negative_sampling}'")
        if self.negative_sampling == 'dns' and self.num_negatives < 2:
            raise ValueError("TrainConfig: negative_sampling='dns' picks among "
                             "num_negatives candidates, so num_negatives must "
                             "be at least 2")
        if self.select not in SELECT_RULES:
            raise ValueError(f"TrainConfig: select must be one of "
                             f"{SELECT_RULES}, got '{self.select}'")
        for name in ('epochs', 'batch_size', 'eval_every', 'num_negatives'):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig: {name} must be positive, got "
                                 f"{getattr(self, name)}")
        if self.lr <= 0 or self.lambda_reg < 0:
            raise ValueError("TrainConfig: lr must be > 0 and lambda_reg >= 0")
        metric, _, k = self.monitor.partition('@')
        if not k.isdigit() or int(k) not in self.ks:
            raise ValueError(f"TrainConfig: monitor '{self.monitor}' must be "
                             f"'<metric>@k' with k in ks={self.ks}")

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out['ks'] = list(self.ks)
        return out

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'TrainConfig':
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"TrainConfig: unknown fields {sorted(unknown)}")
        return cls(**d)


@dataclass
class Recipe:
    r"""A named, reproducible choice of model and training settings."""
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    train: Dict[str, Any] = field(default_factory=dict)
    note: str = ''


# (model, dataset) -> recipe; '*' matches any data set.
RECIPES: Dict[Tuple[str, str], Dict[str, Recipe]] = {
    ('lightgcn', '*'): {
        'default': Recipe({'embedding_dim': 64, 'num_layers': 3},
                          {'lr': 1e-3, 'lambda_reg': 1e-4, 'batch_size': 2048},
                          'LightGCN paper settings'),
    },
    ('lightgcn', 'ml-100k'): {
        'demo': Recipe({'embedding_dim': 64, 'num_layers': 3},
                       {'lr': 5e-3, 'lambda_reg': 1e-4, 'batch_size': 2048,
                        'epochs': 200, 'eval_every': 5, 'patience': 5,
                        'monitor': 'ndcg@10'},
                       'paper architecture, larger learning rate, early '
                       'stopping on validation NDCG@10'),
    },
    ('lightgcn', 'gowalla'): {
        'paper': Recipe({'embedding_dim': 64, 'num_layers': 3,
                         'storage_dtype': 'bfloat16'},
                        {'lr': 1e-2, 'lr_schedule': 'cosine',
                         'lambda_reg': 1e-4, 'batch_size': 16384,
                         'epochs': 650, 'eval_every': 20, 'patience': 0,
                         'select': 'last', 'monitor': 'ndcg@20'},
                        'paper architecture and L2 (1e-4, LightGCN scaling); '
                        'batch 16384 with Adam 1e-2 annealed to 0 (cosine) '
                        'over 650 epochs (18 min at 1.7 s an epoch on 2 '
                        'threads; 450 gave R@20 0.1808, L2 2e-4 a lower NDCG); '
                        'uniform negatives; bfloat16 storage of the gathered '
                        'layers in training; final epoch reported'),
    },
    ('lightgcn', 'yelp2018'): {
        'paper': Recipe({'embedding_dim': 64, 'num_layers': 3,
                         'storage_dtype': 'bfloat16'},
                        {'lr': 1e-2, 'lr_schedule': 'cosine',
                         'lambda_reg': 2e-4, 'batch_size': 32768,
                         'epochs': 1350, 'eval_every': 20, 'patience': 0,
                         'select': 'last', 'monitor': 'ndcg@20'},
                        'as the Gowalla paper recipe with twice the L2 '
                        '(2e-4) and batch 32768 over 1350 epochs (39 min '
                        'at 1.75 s an epoch on 2 threads: a step '
                        'propagates the whole graph whatever the batch, so '
                        'doubling the batch doubles the epochs per hour); '
                        'R@20 0.0653 / N@20 0.0535, where the L2 of 1e-4 '
                        'plateaued at '
                        '0.0630 / 0.0516 (1150 or 1350 epochs)'),
    },
    ('mf', '*'): {
        'default': Recipe({'embedding_dim': 64},
                          {'lr': 1e-3, 'lambda_reg': 1e-4, 'batch_size': 2048},
                          'BPR-MF with the LightGCN settings'),
    },
    ('mf', 'ml-100k'): {
        'demo': Recipe({'embedding_dim': 64},
                       {'lr': 1e-3, 'lambda_reg': 1e-4, 'batch_size': 2048,
                        'epochs': 200, 'eval_every': 5, 'patience': 5,
                        'monitor': 'ndcg@10'},
                       'the LightGCN demo settings with the learning rate '
                       'that suits MF better (5e-3 overfits by epoch 15)'),
    },
    ('dccf', '*'): {
        'default': Recipe({'embedding_dim': 32, 'num_layers': 2,
                           'num_intents': 128},
                          {'lr': 1e-3, 'batch_size': 10240,
                           'lambda_reg': 2.5e-5, 'reg_scaling': 'dccf'},
                          'DCCF paper / official-code settings (ssl weight '
                          '0.1, temperature 1, prototype L2 5e-3 are the '
                          'model defaults); the official code draws 40 '
                          'batches of random-user triples per epoch, trains '
                          '150 epochs on Gowalla (100 on Amazon-book, Tmall) '
                          'and reports the final epoch'),
    },
    ('sheaf4rec', '*'): {
        'default': Recipe({'embedding_dim': 64, 'num_layers': 10,
                           'stalk_dim': 1, 'readout': 'mean'},
                          {'lr': 5e-3, 'lambda_reg': 1e-4, 'batch_size': 1024},
                          'the released Sheaf4Rec code\'s settings (scalar '
                          'maps, 10 layers, mean readout)'),
    },
    ('bayes-lightgcn', '*'): {
        'default': Recipe({'embedding_dim': 64, 'num_layers': 3,
                           'generator': 'peco', 'num_samples': 4},
                          {'lr': 1e-3, 'lambda_reg': 1e-4, 'batch_size': 2048},
                          'LightGCN settings on graphs sampled by PECO (the '
                          'generator defaults), a new graph every epoch, '
                          'scores averaged over 4 sampled graphs'),
    },
    ('gte', '*'): {'default': Recipe(), 'demo': Recipe()},
    ('mostpop', '*'): {'default': Recipe(), 'demo': Recipe()},
}


def get_recipe(model: str, dataset: str, name: str = 'default') -> Recipe:
    r"""The recipe :obj:`name` for :obj:`model` on :obj:`dataset` (a
    data-set-specific one if registered, else the generic one)."""
    for key in ((model, dataset), (model, '*')):
        if key in RECIPES and name in RECIPES[key]:
            return RECIPES[key][name]
    known = sorted({n for (m, _), r in RECIPES.items() if m == model
                    for n in r})
    raise ValueError(f"no recipe '{name}' for model '{model}' on "
                     f"'{dataset}' (known: {known})")


MODELS = ('lightgcn', 'dccf', 'sheaf4rec', 'gte', 'bayes-lightgcn', 'mf',
          'mostpop')


def build_model(name: str, graph, **kwargs):
    r"""Instantiates model :obj:`name` for :obj:`graph`.

    :obj:`'bayes-lightgcn'` is a
    :class:`~pyg_recsys.nn.models.BayesianRecommender` around a
    :class:`~pyg_recsys.nn.LightGCN`; besides the LightGCN arguments it
    takes :obj:`generator` (:obj:`'node_copy'` or :obj:`'peco'`, fitted to
    the training split), :obj:`generator_kwargs` (a dict for the generator),
    :obj:`num_samples`, :obj:`resample_every` (default: the steps of one
    epoch at batch size 2048; the command line uses its batch size) and
    :obj:`seed`.
    """
    from pyg_recsys.nn.models import DCCF, GTE, MF, LightGCN, MostPopular, Sheaf4Rec
    if name == 'lightgcn':
        return LightGCN(graph.num_users, graph.num_items, **kwargs)
    if name == 'dccf':
        return DCCF(graph.num_users, graph.num_items, **kwargs)
    if name == 'sheaf4rec':
        return Sheaf4Rec(graph.num_users, graph.num_items, **kwargs)
    if name == 'gte':
        return GTE.from_graph(graph, **kwargs)
    if name == 'bayes-lightgcn':
        from pyg_recsys.data.graph_generators import build_generator
        from pyg_recsys.nn.models import BayesianRecommender
        bayes = {key: kwargs.pop(key) for key in
                 ('num_samples', 'resample_every', 'seed') if key in kwargs}
        bayes.setdefault('resample_every', -(-graph.train.size(1) // 2048))
        generator = build_generator(kwargs.pop('generator', 'peco'), graph,
                                    **(kwargs.pop('generator_kwargs', None)
                                       or {}))
        base = LightGCN(graph.num_users, graph.num_items, **kwargs)
        return BayesianRecommender(base, generator, **bayes)
    if name == 'mf':
        return MF(graph.num_users, graph.num_items, **kwargs)
    if name == 'mostpop':
        return MostPopular(graph.item_degree(), graph.num_users)
    raise ValueError(f"unknown model '{name}' (expected one of {MODELS})")
