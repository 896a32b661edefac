r"""Training configuration and named recipes."""
import dataclasses
import json
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import torch

SELECT_RULES = ('valid', 'last', 'test')
LR_SCHEDULES = ('constant', 'cosine', 'step')
NEGATIVE_SAMPLING = ('uniform', 'dns')
NEGATIVE_POOLS = ('all', 'train')
REG_SCALINGS = ('lightgcn', 'dccf', 'pyg', 'bgcf')
SAMPLERS = ('per_user', 'per_interaction')
LOSSES = ('bpr', 'ccl', 'softmax')
METRIC_NAMES = ('recall', 'ndcg', 'precision', 'hit', 'mrr', 'map', 'f1')


def resolve_device(spec: Optional[str] = 'auto') -> torch.device:
    r"""The device named by :obj:`spec`: :obj:`'auto'` (CUDA when available,
    else the CPU), :obj:`'cpu'`, :obj:`'cuda'` or :obj:`'cuda:N'`. Raises
    :class:`ValueError` for an unknown name or a CUDA device that is not
    there."""
    spec = 'auto' if spec is None else str(spec)
    if spec == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or "
                         f"'cuda:N', got '{spec}'") from None
    if device.type not in ('cpu', 'cuda'):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or "
                         f"'cuda:N', got '{spec}'")
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f"device '{spec}' was asked for, but no CUDA "
                             f"device is available (torch "
                             f"{torch.__version__}); use --device cpu")
        if device.index is not None and \
                device.index >= torch.cuda.device_count():
            raise ValueError(f"device '{spec}': only "
                             f"{torch.cuda.device_count()} CUDA devices")
    return device


@dataclass
class TrainConfig:
    r"""Everything that determines a training run besides model and data.

    Attributes:
        epochs (int): Maximum number of epochs.
        batch_size (int): BPR triples per optimiser step.
        lr (float): Adam learning rate.
        lr_schedule (str): :obj:`'constant'`, :obj:`'cosine'` (annealed
            per epoch from :obj:`lr` to 0 at :obj:`epochs`) or :obj:`'step'`
            (multiplied by :obj:`lr_decay` after each epoch in
            :obj:`lr_milestones`, PyTorch's :class:`MultiStepLR`).
        lr_milestones (tuple of int): :obj:`'step'`: the epochs (1-based,
            increasing) after which the learning rate drops.
        lr_decay (float): :obj:`'step'`: the factor of each drop.
        embedding_decay (float): L2 strength :math:`\lambda` on every
            embedding table as a whole, :math:`\frac{\lambda}{2}
            \lVert \mathbf{W} \rVert^2` added to the loss at every step
            (Adam's coupled :obj:`weight_decay` on the
            :class:`torch.nn.Embedding` parameters only), as SimpleX's
            :obj:`embedding_regularizer`; unlike :obj:`lambda_reg`, rows that
            are not in the batch decay too.
        lambda_reg (float): L2 strength on the batch's ego embeddings.
        reg_scaling (str): :obj:`'lightgcn'`, :obj:`'dccf'` or :obj:`'pyg'`
            (see :mod:`pyg_recsys.nn.loss`), or :obj:`'bgcf'` (BGCF only: half
            the squared norms of its output representations, summed).
        sampler (str): :obj:`'per_user'` or :obj:`'per_interaction'`.
        steps_per_epoch (int, optional): Mini-batches per epoch. :obj:`None`
            draws as many triples as there are training interactions (the
            LightGCN code's epoch); DCCF's official code draws a fixed 40
            batches of users per epoch, whatever the data set's size.
        num_negatives (int): Negatives per positive; with
            :obj:`negative_sampling='dns'`, the candidates per positive.
        negative_sampling (str): :obj:`'uniform'` (every sampled negative
            enters the loss) or :obj:`'dns'` (dynamic negative sampling: of
            :obj:`num_negatives` uniform candidates, the one the current
            model scores highest).
        shared_negatives (bool): Draw :obj:`num_negatives` negatives per
            mini-batch, shared by all its triples (one :obj:`[B, d] x [d, M]`
            product scores them), instead of per triple. They are uniform
            over the pool and not checked against each user's positives,
            as in SimpleX's code for Gowalla and Yelp2018
            (:obj:`ignore_pos_items: False`); every triple still sees
            :obj:`num_negatives` uniform negatives, but the triples of one
            batch see the same ones.
        exclude_positives (bool): With :obj:`shared_negatives`: a shared
            negative that is one of a triple's user's training items is left
            out of that triple's loss (a mask; the mean over negatives runs
            over the rest), as SimpleX's code does with
            :obj:`ignore_pos_items: True` (its ML-1M configuration).
            Negatives drawn per triple are always redrawn until they are not
            positives.
        loss (str): The ranking objective (see
            :func:`pyg_recsys.nn.loss.ranking_loss`): :obj:`'bpr'`,
            :obj:`'ccl'` (SimpleX's cosine contrastive loss, for models
            that score by cosine) or :obj:`'softmax'` (sampled softmax).
        margin (float): :obj:`'ccl'`: the margin on negative scores.
        negative_weight (float, optional): :obj:`'ccl'`: the weight of the
            mean negative term (:obj:`None`: the negatives' terms summed).
        temperature (float): :obj:`'softmax'`: the temperature.
        negative_pool (str): Which items negatives are drawn from:
            :obj:`'all'`, or :obj:`'train'` (the items with a training
            interaction, so that items held out for cold-start evaluation
            are never trained as negatives).
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
        num_neighbors (tuple of int, optional): Mini-batch training on
            sampled subgraphs: per propagation layer, the neighbours drawn
            per node around each batch's nodes (:obj:`-1`: all; see
            :class:`~pyg_recsys.data.SubgraphSampler`). :obj:`None`
            propagates over the whole graph every step.
        device (str): Where the model trains and is evaluated:
            :obj:`'auto'` (CUDA when available), :obj:`'cpu'`,
            :obj:`'cuda'` or :obj:`'cuda:N'` (see :func:`resolve_device`).
    """
    epochs: int = 200
    batch_size: int = 2048
    steps_per_epoch: Optional[int] = None
    lr: float = 1e-3
    lr_schedule: str = 'constant'
    lr_milestones: Tuple[int, ...] = ()
    lr_decay: float = 0.1
    embedding_decay: float = 0.0
    lambda_reg: float = 1e-4
    reg_scaling: str = 'lightgcn'
    sampler: str = 'per_user'
    num_negatives: int = 1
    negative_sampling: str = 'uniform'
    negative_pool: str = 'all'
    shared_negatives: bool = False
    exclude_positives: bool = False
    loss: str = 'bpr'
    margin: float = 0.9
    negative_weight: Optional[float] = None
    temperature: float = 1.0
    eval_every: int = 5
    patience: int = 10
    monitor: str = 'ndcg@10'
    select: str = 'valid'
    ks: Tuple[int, ...] = (10, 20)
    seed: int = 0
    threads: Optional[int] = None
    eval_batch_size: Optional[int] = None
    num_neighbors: Optional[Tuple[int, ...]] = None
    device: str = 'auto'

    def __post_init__(self):
        try:
            self.ks = tuple(int(k) for k in self.ks)
        except (TypeError, ValueError):
            raise ValueError(f"TrainConfig: ks must be integers, got "
                             f"{self.ks!r}") from None
        if self.num_neighbors is not None:
            try:
                self.num_neighbors = tuple(int(k) for k in self.num_neighbors)
            except (TypeError, ValueError):
                raise ValueError(f"TrainConfig: num_neighbors must be "
                                 f"integers, got {self.num_neighbors!r}"
                                 ) from None
            if any(k == 0 or k < -1 for k in self.num_neighbors):
                raise ValueError(f"TrainConfig: num_neighbors must be "
                                 f"positive counts or -1 (all), got "
                                 f"{self.num_neighbors}")
        if not self.ks or min(self.ks) <= 0:
            raise ValueError(f"TrainConfig: ks must be positive cut-offs, "
                             f"got {self.ks}")
        for name, choices in (('reg_scaling', REG_SCALINGS),
                              ('sampler', SAMPLERS),
                              ('negative_pool', NEGATIVE_POOLS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"TrainConfig: {name} must be one of "
                                 f"{choices}, got '{getattr(self, name)}'")
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig: loss must be one of {LOSSES}, "
                             f"got '{self.loss}'")
        if not (math.isfinite(self.margin) and -1.0 < self.margin < 1.0):
            raise ValueError(f"TrainConfig: margin is a cosine threshold in "
                             f"(-1, 1), got {self.margin}")
        if self.negative_weight is not None and not (
                math.isfinite(self.negative_weight)
                and self.negative_weight >= 0):
            raise ValueError(f"TrainConfig: negative_weight must be >= 0 (or "
                             f"None), got {self.negative_weight}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"TrainConfig: temperature must be positive, "
                             f"got {self.temperature}")
        if self.exclude_positives and not self.shared_negatives:
            raise ValueError("TrainConfig: exclude_positives masks shared "
                             "negatives (shared_negatives=True); negatives "
                             "drawn per triple are never positives")
        if self.shared_negatives and self.negative_sampling == 'dns':
            raise ValueError("TrainConfig: shared_negatives and "
                             "negative_sampling='dns' do not combine (dns "
                             "picks one negative per triple)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig: lr_schedule must be one of "
                             f"{LR_SCHEDULES}, got '{self.lr_schedule}'")
        try:
            self.lr_milestones = tuple(int(m) for m in self.lr_milestones)
        except (TypeError, ValueError):
            raise ValueError(f"TrainConfig: lr_milestones must be epochs, "
                             f"got {self.lr_milestones!r}") from None
        if (self.lr_schedule == 'step') != bool(self.lr_milestones):
            raise ValueError(f"TrainConfig: lr_milestones go with "
                             f"lr_schedule='step' (and it needs them), got "
                             f"lr_schedule='{self.lr_schedule}' and "
                             f"lr_milestones={self.lr_milestones}")
        m = self.lr_milestones
        if m and (m[0] < 1 or any(a >= b for a, b in zip(m, m[1:]))):
            raise ValueError(f"TrainConfig: lr_milestones must be increasing "
                             f"epochs >= 1, got {m}")
        if not (math.isfinite(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise ValueError(f"TrainConfig: lr_decay must lie in (0, 1], got "
                             f"{self.lr_decay}")
        if not (math.isfinite(self.embedding_decay)
                and self.embedding_decay >= 0):
            raise ValueError(f"TrainConfig: embedding_decay must be >= 0, "
                             f"got {self.embedding_decay}")
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
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig: lr must be a positive number, "
                             f"got {self.lr}")
        if not (math.isfinite(self.lambda_reg) and self.lambda_reg >= 0):
            raise ValueError(f"TrainConfig: lambda_reg must be >= 0, got "
                             f"{self.lambda_reg}")
        if self.patience < 0:
            raise ValueError(f"TrainConfig: patience must be >= 0 (0 turns "
                             f"early stopping off), got {self.patience}")
        for name in ('threads', 'eval_batch_size', 'steps_per_epoch'):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"TrainConfig: {name} must be positive, got "
                                 f"{value}")
        metric, _, k = str(self.monitor).partition('@')
        if metric not in METRIC_NAMES or not k.isdigit() or \
                int(k) not in self.ks:
            raise ValueError(f"TrainConfig: monitor '{self.monitor}' must be "
                             f"'<metric>@k' with metric one of "
                             f"{METRIC_NAMES} and k in ks={self.ks}")
        if self.device != 'auto':
            try:
                kind = torch.device(self.device).type
            except RuntimeError:
                kind = None
            if kind not in ('cpu', 'cuda'):
                raise ValueError(f"TrainConfig: device must be 'auto', "
                                 f"'cpu', 'cuda' or 'cuda:N', got "
                                 f"'{self.device}'")

    @property
    def loss_options(self) -> Dict[str, Any]:
        r"""The keyword arguments of :meth:`EmbeddingRecommender.training_loss
        <pyg_recsys.nn.models.EmbeddingRecommender.training_loss>` that
        choose the ranking loss (empty for BPR, so that models without
        other losses need not take them)."""
        if self.loss == 'bpr':
            return {}
        kwargs = ({'margin': self.margin,
                   'negative_weight': self.negative_weight}
                  if self.loss == 'ccl' else {'temperature': self.temperature})
        return {'loss': self.loss, 'loss_kwargs': kwargs}

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out['ks'] = list(self.ks)
        if self.num_neighbors is not None:
            out['num_neighbors'] = list(self.num_neighbors)
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


def _load_recipes() -> Dict[Tuple[str, str], Dict[str, Recipe]]:
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'recipes.json')
    with open(path) as f:
        raw = json.load(f)
    out: Dict[Tuple[str, str], Dict[str, Recipe]] = {}
    for model, by_data in raw.items():
        if model.startswith('_'):
            continue
        for dataset, named in by_data.items():
            out[(model, dataset)] = {
                name: Recipe(dict(r.get('model', {})), dict(r.get('train', {})),
                             r.get('note', ''))
                for name, r in named.items()}
    return out


# (model, dataset) -> recipe name -> recipe; '*' matches any data set. The
# recipes are data (recipes.json); a user's own are added with
# :func:`register_recipe`.
RECIPES: Dict[Tuple[str, str], Dict[str, Recipe]] = _load_recipes()


def register_recipe(model: str, name: str, recipe: Recipe,
                    dataset: str = '*') -> None:
    r"""Adds recipe :obj:`name` of :obj:`model` (on :obj:`dataset`, or any
    data set with :obj:`'*'`), e.g. for a user's registered model."""
    TrainConfig(**recipe.train)  # validate before anything uses it
    RECIPES.setdefault((model, dataset), {})[name] = recipe


def embedding_param_groups(model: torch.nn.Module, decay: float):
    r"""Parameter groups of :obj:`model` for Adam: the weights of its
    :class:`torch.nn.Embedding` tables with :obj:`weight_decay=decay`, the
    rest without (one group when :obj:`decay` is 0)."""
    if decay == 0:
        return list(model.parameters())
    tables = {id(m.weight) for m in model.modules()
              if isinstance(m, torch.nn.Embedding)}
    emb = [p for p in model.parameters() if id(p) in tables]
    if not emb:
        raise ValueError(f"embedding_decay: {type(model).__name__} has no "
                         f"embedding tables to decay")
    rest = [p for p in model.parameters() if id(p) not in tables]
    groups = [{'params': emb, 'weight_decay': decay}]
    if rest:
        groups.append({'params': rest, 'weight_decay': 0.0})
    return groups


def make_adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    r"""Adam over :obj:`params`, fused into one kernel per step where
    PyTorch has one for them (CPU and CUDA, floating parameters), else
    PyTorch's default implementation. The update is Adam's either way (equal
    up to float rounding); on this project's 2-core machine the fused step
    over a 7.2 M-parameter table takes 4.8 ms against 22.9 ms."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, **kwargs)


def get_recipe(model: str, dataset: Optional[str], name: str = 'default'
               ) -> Recipe:
    r"""The recipe :obj:`name` for :obj:`model` on :obj:`dataset` (a
    data-set-specific one if registered, else the generic one). A model
    without recipes gets an empty :obj:`'default'` (its own defaults)."""
    for key in ((model, dataset), (model, '*')):
        if key in RECIPES and name in RECIPES[key]:
            return RECIPES[key][name]
    known = sorted({n for (m, _), r in RECIPES.items() if m == model
                    for n in r})
    if not known and name == 'default':
        return Recipe()
    raise ValueError(f"no recipe '{name}' for model '{model}' on "
                     f"'{dataset}' (known: {known})")


def build_model(name: str, graph, **kwargs):
    r"""Instantiates the registered model :obj:`name` for :obj:`graph` (see
    :func:`pyg_recsys.nn.models.register_model`)."""
    from pyg_recsys.nn.models.registry import build_model as build
    return build(name, graph, **kwargs)
