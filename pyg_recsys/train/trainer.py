r"""The training loop: BPR epochs, periodic evaluation, early stopping,
atomic checkpoints, resumption, JSON-lines logs and training curves."""
import copy
import inspect
import json
import os
import os.path as osp
import random
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from pyg_recsys import distributed
from pyg_recsys.data.graph import InteractionGraph
from pyg_recsys.data.neighbor import SubgraphSampler
from pyg_recsys.data.sampler import BPRSampler
from pyg_recsys.metrics import Evaluator
from pyg_recsys.ops.csr import mark_normalized
from pyg_recsys.train.checkpoint import load_checkpoint, save_checkpoint
from pyg_recsys.train.config import (TrainConfig, embedding_param_groups,
                                     make_adam, resolve_device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _trainable(model: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())


# Rank r's sampler seed is seed + r * _RANK_STREAM (rank 0: the seed itself).
_RANK_STREAM = 7919


class _TrainingLoss(torch.nn.Module):
    # The model's training_loss as a forward, so that DistributedDataParallel
    # (which hooks into forward) can wrap it; the parameters stay the
    # model's own.
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model.training_loss(*args, **kwargs)


def protocol_evaluators(protocol: Optional[str], graph: InteractionGraph,
                        config: TrainConfig
                        ) -> Optional[Dict[str, Evaluator]]:
    r"""The test evaluator of a named protocol: :obj:`None` (or
    :obj:`'full'`) is full ranking (no evaluator needed),
    :obj:`'reclm-zero-shot'` and :obj:`'reclm-full-shot'` RecLM's
    (:func:`~pyg_recsys.metrics.reclm_protocol`)."""
    if protocol in (None, 'full'):
        return None
    from pyg_recsys.metrics import reclm_protocol
    return {'test': Evaluator(graph, ks=config.ks,
                              batch_size=config.eval_batch_size,
                              device=resolve_device(config.device),
                              **reclm_protocol(graph,
                                               protocol[len('reclm-'):]))}


class Trainer:
    r"""Trains a recommender of :mod:`pyg_recsys.nn.models` with BPR on an
    :class:`~pyg_recsys.data.InteractionGraph` and evaluates it by exact full
    ranking.

    Model selection follows :attr:`TrainConfig.select`: with a validation
    split, the model with the best :attr:`TrainConfig.monitor` on it is
    restored before the final test; :obj:`'test'` selects on the test split
    and every report names it so.

    Data-parallel: when :mod:`torch.distributed` is initialised with
    several processes (e.g. under :obj:`torchrun`), every process draws
    :obj:`batch_size / world_size` triples of each global batch from its own
    seed stream, the gradients are averaged by
    :class:`~torch.nn.parallel.DistributedDataParallel`, evaluation is split
    over the processes (:func:`pyg_recsys.distributed.evaluate`, identical
    metrics) and only rank 0 writes files. The step equals one process at
    the global batch for losses that are per-triple means or sums (BPR, the
    :obj:`'lightgcn'` and :obj:`'dccf'` L2 scalings); terms over the
    distinct nodes of a batch (the :obj:`'pyg'` L2, DCCF's contrastive loss
    with in-batch negatives) are computed per process's share, a smaller
    batch than the global one.

    Args:
        model (torch.nn.Module): The model: an
            :class:`~pyg_recsys.nn.models.EmbeddingRecommender` (its
            :obj:`training_loss` and :obj:`get_embedding` are used, with
            node ids) or a model with :obj:`scores(users)` only.
        graph (InteractionGraph): Data and splits.
        config (TrainConfig): Settings.
        out_dir (str, optional): Where :obj:`checkpoint.pt`, :obj:`log.jsonl`
            and :obj:`curve.png` go; nothing is written without it.
        progress (bool, optional): Show tqdm progress bars.
        meta (dict, optional): Extra entries (model and data set names, model
            arguments) stored in checkpoints for later rebuilding.
        evaluators (dict, optional): Split name to the
            :class:`~pyg_recsys.metrics.Evaluator` used for it, for a
            protocol other than the default full ranking (e.g. only new
            items as candidates, see
            :func:`~pyg_recsys.metrics.reclm_protocol`); splits not given
            get the default. (default: :obj:`None`)
    """
    def __init__(self, model: torch.nn.Module, graph: InteractionGraph,
                 config: Optional[TrainConfig] = None,
                 out_dir: Optional[str] = None, progress: bool = True,
                 meta: Optional[Dict[str, Any]] = None,
                 evaluators: Optional[Dict[str, Evaluator]] = None):
        self.config = config or TrainConfig()
        self.model = model
        self.graph = graph
        self.out_dir = out_dir
        self.progress = progress
        self.meta = dict(meta or {})
        if 'model' not in self.meta:  # so that the CLI can rebuild it
            from pyg_recsys.nn.models.registry import name_of
            name = name_of(model)
            kwargs = getattr(model, 'init_kwargs', None)
            if name is not None and kwargs is not None:
                self.meta['model'] = name
                self.meta['model_kwargs'] = {
                    k: v for k, v in kwargs.items()
                    if k not in ('num_users', 'num_items', 'num_nodes')}
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.device = resolve_device(self.config.device)
        self.model.to(self.device)
        self.adj = graph.norm_adj(
            device=None if self.device.type == 'cpu' else self.device)
        self.history: List[Dict[str, Any]] = []
        self.epoch = 0
        self.best: Optional[Dict[str, Any]] = None
        self.best_state: Optional[Dict[str, torch.Tensor]] = None
        self.bad_evals = 0
        self.train_seconds = 0.0
        self.select_split = self._select_split()
        self.rank, self.world_size = distributed.world()
        self.sampler = self.optimizer = None
        if _trainable(model):
            pool = None
            if self.config.negative_pool == 'train':
                pool = torch.unique(graph.train[1])
            params = inspect.signature(model.training_loss).parameters
            if (self.config.loss_options or self.config.exclude_positives) \
                    and 'loss' not in params and not any(
                    p.kind == p.VAR_KEYWORD for p in params.values()):
                raise ValueError(f"Trainer: {type(model).__name__} trains "
                                 f"with its own objective; loss="
                                 f"'{self.config.loss}' is for the embedding "
                                 f"models (mf, lightgcn, simplex, ...)")
            self.sampler = BPRSampler(
                graph, self.config.sampler, self.config.num_negatives,
                seed=self.config.seed + _RANK_STREAM * self.rank,
                negative_items=pool,
                shared_negatives=self.config.shared_negatives)
            self.optimizer = make_adam(
                embedding_param_groups(model, self.config.embedding_decay),
                self.config.lr)
            if self.world_size > 1:
                if self.config.batch_size % self.world_size:
                    raise ValueError(
                        f"Trainer: batch_size {self.config.batch_size} does "
                        f"not split over {self.world_size} processes")
        self.subgraphs = None
        if self.sampler is not None and self.config.num_neighbors is not None:
            hops = self.config.num_neighbors
            if not getattr(model, 'subgraphs', False):
                raise ValueError(f"Trainer: {type(model).__name__} does not "
                                 f"train on sampled subgraphs (num_neighbors)")
            layers = getattr(model, 'num_layers', 0)
            if len(hops) != layers:
                raise ValueError(f"Trainer: num_neighbors needs one count "
                                 f"per propagation layer ({layers}), got "
                                 f"{list(hops)}")
            # The triples' stream draws the neighbours too, so that
            # checkpoints resume both.
            self.subgraphs = SubgraphSampler(self.adj, hops,
                                             self.sampler.generator)
        self.scheduler = None
        if self.optimizer is not None and self.config.lr_schedule == 'cosine':
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=self.config.epochs)
        elif self.optimizer is not None and self.config.lr_schedule == 'step':
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
                self.optimizer, list(self.config.lr_milestones),
                gamma=self.config.lr_decay)
        # Seconds spent per phase over the run (see :meth:`train_epoch`).
        self.profile = {'sample': 0.0, 'forward': 0.0, 'backward': 0.0,
                        'optimizer': 0.0, 'evaluate': 0.0}
        self._evaluators: Dict[str, Evaluator] = {}
        for split, ev in (evaluators or {}).items():
            if split != getattr(ev, 'split', None):
                raise ValueError(f"Trainer: the evaluator given for "
                                 f"'{split}' evaluates '{ev.split}'")
            self._evaluators[split] = ev

    # ------------------------------------------------------------------
    def _select_split(self) -> Optional[str]:
        rule = self.config.select
        if rule == 'valid':
            if self.graph.valid is None or self.graph.valid.numel() == 0:
                return None  # nothing to select on: the last epoch is kept
            return 'valid'
        if rule == 'test':
            return 'test'
        return None

    @property
    def selection(self) -> str:
        r"""How the reported model was chosen, in words."""
        if self.select_split == 'valid':
            return f'best {self.config.monitor} on the validation split'
        if self.select_split == 'test':
            return (f'best {self.config.monitor} on the TEST split '
                    f'(best-on-test protocol)')
        return 'final epoch'

    def evaluator(self, split: str) -> Evaluator:
        if split not in self._evaluators:
            self._evaluators[split] = Evaluator(
                self.graph, split=split, ks=self.config.ks,
                batch_size=self.config.eval_batch_size, device=self.device)
        return self._evaluators[split]

    @torch.no_grad()
    def evaluate(self, split: str = 'test') -> Dict[str, float]:
        r"""Full-ranking metrics of the current model on :obj:`split`."""
        self.model.eval()
        ev = self.evaluator(split)
        if hasattr(self.model, 'get_embedding'):
            out = self.model.get_embedding(self.adj)
            num_users = self.graph.num_users
            # Split over the processes when there are several.
            return distributed.evaluate(ev, out[:num_users],
                                        out[num_users:])
        return ev.evaluate_scores(
            lambda u: self.model.scores(u.to(self.device), self.adj))

    @torch.no_grad()
    def recommend(self, users, k: int = 10,
                  exclude=('train', 'valid', 'test')) -> torch.Tensor:
        r"""The top-:obj:`k` items (item ids, best first) of the current
        model for :obj:`users` (user ids), never an item the user has in the
        :obj:`exclude` splits (default: every interaction the graph knows).
        Rows with fewer than :obj:`k` candidates are padded with
        :obj:`-1`."""
        graph = self.graph
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        if users.numel() and (int(users.min()) < 0
                              or int(users.max()) >= graph.num_users):
            raise ValueError(f"recommend: user ids must lie in "
                             f"[0, {graph.num_users})")
        if int(k) <= 0:
            raise ValueError(f"recommend: k must be positive, got {k}")
        parts = [graph.split(s) for s in exclude
                 if getattr(graph, s, None) is not None]
        pairs = torch.cat(parts, dim=1) if parts else \
            torch.empty(2, 0, dtype=torch.long)
        self.model.eval()
        num_users, num_items = graph.num_users, graph.num_items
        if hasattr(self.model, 'get_embedding'):
            links = torch.stack([pairs[0], pairs[1] + num_users])
            top = self.model.recommend(
                self.adj, src_index=users,
                dst_index=torch.arange(num_users, num_users + num_items),
                k=k, exclude_links=links).cpu()
            return torch.where(top >= 0, top - num_users, -1)
        from pyg_recsys.metrics import topk_scores
        return topk_scores(
            lambda u: self.model.scores(u.to(self.device), self.adj),
            num_users, num_items, users, k, exclude=pairs)[1].cpu()

    # ------------------------------------------------------------------
    def _log(self, record: Dict[str, Any]) -> None:
        self.history.append(record)
        if self.out_dir and self.rank == 0:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(osp.join(self.out_dir, 'log.jsonl'), 'a') as f:
                f.write(json.dumps(record) + '\n')

    def train_epoch(self) -> Dict[str, float]:
        r"""One epoch of BPR steps; returns the mean losses."""
        assert self.sampler is not None and self.optimizer is not None
        cfg = self.config
        self.model.train()
        n = cfg.steps_per_epoch or -(-len(self.sampler) // cfg.batch_size)
        # Data-parallel: each process draws its share of every global batch
        # from its own stream, the same number of steps everywhere.
        local = cfg.batch_size // self.world_size
        fixed = self.world_size > 1 or cfg.steps_per_epoch is not None
        batches = self.sampler.batches(local, n * local if fixed else None)
        loss_fn = self.model.training_loss
        # Row-sharded tables (e.g. ShardedMF): no all-reduce, the lookups'
        # backward sums every row's gradient at its owner; each process's
        # loss weighs 1 / world, as DDP's averaging does.
        sharded = getattr(self.model, 'sharded', False)
        weight = 1.0 / self.world_size if sharded else 1.0
        if self.world_size > 1 and not sharded:
            # A DistributedDataParallel for this epoch only: dropped before
            # the method returns, while the process group is still
            # registered. A DDP that outlives the epoch would let its
            # reducer hold the last reference to the group once the user
            # calls destroy_process_group(), and the group's destructor then
            # runs (from the reducer's, holding the GIL) while a gloo thread
            # waits for the GIL to free a finished all-gather's tensors: a
            # deadlock at exit, seen in 3 of 6 four-process runs.
            from torch.nn.parallel import DistributedDataParallel
            loss_fn = DistributedDataParallel(_TrainingLoss(self.model))
        # DDP averages the gradients: exact for the per-row means (BPR, the
        # 'lightgcn' L2); the 'dccf' L2 is a sum over the batch, so each
        # process weighs its share by the world size.
        lambda_reg = cfg.lambda_reg * (self.world_size if cfg.reg_scaling ==
                                       'dccf' else 1)
        if self.progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, total=n, leave=False,
                           desc=f'epoch {self.epoch + 1}', unit='batch')
        totals: Dict[str, float] = {'loss': 0.0}
        hard = ({'hard_negatives': True} if cfg.negative_sampling == 'dns'
                else {})
        prof, clock = self.profile, time.perf_counter
        batches = iter(batches)
        while True:
            t0 = clock()
            batch = next(batches, None)
            t1 = clock()
            prof['sample'] += t1 - t0
            if batch is None:
                break
            # The sampler draws (user, item) ids; models take node ids.
            users, pos, neg = batch
            options = cfg.loss_options
            if cfg.exclude_positives:  # shared negatives, [1, M]
                keep = ~self.sampler.positive_mask(users, neg)
                options = {'loss': cfg.loss, 'loss_kwargs': dict(
                    options.get('loss_kwargs', {}),
                    neg_mask=keep.to(self.device))}
            offset = self.graph.num_users
            adj, pos, neg, extra = self.adj, pos + offset, neg + offset, {}
            if self.subgraphs is not None:
                adj, n_id, users, pos, neg = self.subgraphs(users, pos, neg)
                extra = {'n_id': n_id.to(self.device)}
                if self.device.type != 'cpu':  # a copy: mark it again
                    adj = mark_normalized(adj.to(self.device))
                t_sampled = clock()  # the subgraph counts as sampling
                prof['sample'] += t_sampled - t1
                t1 = t_sampled
            users, pos, neg = (t.to(self.device, non_blocking=True)
                               for t in (users, pos, neg))
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = loss_fn(adj, users, pos, neg, lambda_reg,
                                  cfg.reg_scaling, **hard, **extra,
                                  **options)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training diverged at epoch {self.epoch + 1}: loss is "
                    f"{float(loss.detach())} (try a lower learning rate)")
            t2 = clock()
            (loss * weight if sharded else loss).backward()
            t3 = clock()
            self.optimizer.step()
            t4 = clock()
            prof['forward'] += t2 - t1
            prof['backward'] += t3 - t2
            prof['optimizer'] += t4 - t3
            totals['loss'] += float(loss.detach())
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value
        if self.scheduler is not None:
            self.scheduler.step()
        if self.world_size > 1:  # the logged losses: means over processes
            keys = sorted(totals)
            both = torch.tensor([totals[k] for k in keys], dtype=torch.float64)
            torch.distributed.all_reduce(both)
            totals = dict(zip(keys, (both / self.world_size).tolist()))
        return {k: v / n for k, v in totals.items()}

    def fit(self, on_eval: Optional[Callable[[Dict[str, Any]], None]] = None
            ) -> Dict[str, Any]:
        r"""Trains until :attr:`TrainConfig.epochs` or early stopping, then
        restores the selected model and evaluates it on the test split (and
        validation split when present). Returns the final report."""
        cfg = self.config
        if self.epoch == 0 and not self.history:
            seed_everything(cfg.seed)
        if self.optimizer is not None:
            epochs = range(self.epoch, cfg.epochs)
            if self.progress:
                from tqdm.auto import tqdm
                epochs = tqdm(epochs, initial=self.epoch, total=cfg.epochs,
                              desc='training', unit='epoch')
            for _ in epochs:
                start = time.perf_counter()
                lr = self.optimizer.param_groups[0]['lr']
                losses = self.train_epoch()
                self.train_seconds += time.perf_counter() - start
                self.epoch += 1
                self._log({'epoch': self.epoch, 'kind': 'train',
                           'train_seconds': round(self.train_seconds, 3),
                           'lr': lr, **losses})
                if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
                    stop = self._evaluate_and_select(on_eval)
                    if self.progress and hasattr(epochs, 'set_postfix'):
                        epochs.set_postfix(loss=f"{losses['loss']:.4f}",
                                           **{cfg.monitor: self._last_monitor})
                    self.save()
                    if stop:
                        break
        return self.final_report()

    _last_monitor = float('nan')

    def _evaluate_and_select(self, on_eval=None) -> bool:
        cfg = self.config
        record: Dict[str, Any] = {'epoch': self.epoch, 'kind': 'eval',
                                  'train_seconds': round(self.train_seconds, 3)}
        splits = [s for s in ('valid', 'test') if getattr(self.graph, s)
                  is not None and getattr(self.graph, s).numel() > 0]
        start = time.perf_counter()
        for split in splits:
            record[split] = self.evaluate(split)
        self.profile['evaluate'] += time.perf_counter() - start
        self._log(record)
        if on_eval is not None:
            on_eval(record)
        if self.select_split is None:
            self._last_monitor = round(
                record.get('valid', record.get('test', {})).get(
                    cfg.monitor, float('nan')), 4)
            return False
        value = record[self.select_split][cfg.monitor]
        self._last_monitor = round(value, 4)
        if self.best is None or value > self.best['value']:
            self.best = {'epoch': self.epoch, 'value': value,
                         'split': self.select_split}
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return cfg.patience > 0 and self.bad_evals >= cfg.patience

    def final_report(self) -> Dict[str, Any]:
        r"""Restores the selected model and returns its metrics."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        report: Dict[str, Any] = {
            'selection': self.selection,
            'epoch': self.best['epoch'] if self.best else self.epoch,
            'epochs_run': self.epoch,
            'train_seconds': round(self.train_seconds, 3),
        }
        for split in ('valid', 'test'):
            pairs = getattr(self.graph, split)
            if pairs is not None and pairs.numel() > 0:
                report[split] = self.evaluate(split)
        if self.out_dir and self.rank == 0:
            with open(osp.join(self.out_dir, 'final.json'), 'w') as f:
                json.dump(report, f, indent=2)
            self.plot(osp.join(self.out_dir, 'curve.png'))
        return report

    # ------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        sampler = self.sampler.state_dict() if self.sampler is not None \
            else None
        samplers = [sampler]
        if self.world_size > 1:  # every process's stream (a collective)
            samplers = [None] * self.world_size
            torch.distributed.all_gather_object(samplers, sampler)
        return {
            'format': 'pyg_recsys/checkpoint/1',
            'meta': self.meta,
            'graph': self.graph.state_dict(),
            'config': self.config.to_dict(),
            'epoch': self.epoch,
            'train_seconds': self.train_seconds,
            'model': self.model.state_dict(),
            # A row-sharded model's optimizer state is in shards, one per
            # process, not gathered: its checkpoints evaluate and load as
            # the plain model, and do not resume.
            'optimizer': (self.optimizer.state_dict()
                          if self.optimizer is not None and
                          not getattr(self.model, 'sharded', False) else None),
            'sharded': bool(getattr(self.model, 'sharded', False)),
            'sampler': sampler,
            'samplers': samplers,
            'world_size': self.world_size,
            'scheduler': (self.scheduler.state_dict()
                          if self.scheduler is not None else None),
            'torch_rng': torch.get_rng_state(),
            'best': self.best,
            'best_state': self.best_state,
            'bad_evals': self.bad_evals,
            'history': json.dumps(self.history),
        }

    def save(self, path: Optional[str] = None) -> Optional[str]:
        r"""Atomically writes a checkpoint (default
        :obj:`out_dir/checkpoint.pt`)."""
        path = path or (osp.join(self.out_dir, 'checkpoint.pt')
                        if self.out_dir else None)
        if path is not None:
            state = self.state_dict()  # on every process (it gathers)
            if self.rank == 0:
                save_checkpoint(state, path)
        return path

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state.get('format') != 'pyg_recsys/checkpoint/1':
            raise ValueError("not a pyg_recsys training checkpoint")
        if state.get('sharded') and self.optimizer is not None:
            raise ValueError("cannot resume a run of a row-sharded model: "
                             "its optimizer state is not checkpointed (the "
                             "checkpoint loads as the plain model for "
                             "evaluation)")
        self.model.load_state_dict(state['model'])
        if self.optimizer is not None and state['optimizer'] is not None:
            self.optimizer.load_state_dict(state['optimizer'])
        saved_world = int(state.get('world_size', 1))
        if self.sampler is not None and saved_world != self.world_size:
            raise ValueError(f"cannot resume: the checkpoint was trained by "
                             f"{saved_world} process(es), this run has "
                             f"{self.world_size} (each process continues "
                             f"its own sampling stream)")
        if self.sampler is not None and state['sampler'] is not None:
            samplers = state.get('samplers') or [state['sampler']]
            self.sampler.load_state_dict(samplers[self.rank])
        if self.scheduler is not None and state.get('scheduler') is not None:
            self.scheduler.load_state_dict(state['scheduler'])
        torch.set_rng_state(state['torch_rng'])
        self.epoch = int(state['epoch'])
        self.train_seconds = float(state['train_seconds'])
        self.best = state['best']
        self.best_state = state['best_state']
        self.bad_evals = int(state['bad_evals'])
        self.history = json.loads(state['history'])

    def resume(self, path: Optional[str] = None) -> bool:
        r"""Continues from a checkpoint if one exists; returns whether it
        did."""
        path = path or (osp.join(self.out_dir, 'checkpoint.pt')
                        if self.out_dir else None)
        if path is None or not osp.exists(path):
            return False
        state = load_checkpoint(path)
        # Where and on how many threads a run continues may change.
        free = ('device', 'threads')
        ours = {k: v for k, v in self.config.to_dict().items()
                if k not in free}
        theirs = {k: v for k, v in state['config'].items() if k not in free}
        saved = state.get('graph')
        if saved is not None:
            mine = self.graph.state_dict()
            for key in ('num_users', 'num_items', 'train'):
                a, b = saved[key], mine[key]
                if key == 'train':
                    same = a.shape == b.shape and torch.equal(a.long(),
                                                              b.long())
                else:
                    same = a == b
                if not same:
                    raise ValueError(f"cannot resume from '{path}': it was "
                                     f"trained on another graph (its "
                                     f"{key} differs)")
        if theirs != ours:
            changed = sorted(k for k in set(ours) | set(theirs)
                             if ours.get(k) != theirs.get(k))
            raise ValueError(f"cannot resume from '{path}': its settings "
                             f"differ in {changed}")
        self.load_state_dict(state)
        return True

    @classmethod
    def from_checkpoint(cls, path: str, device: str = 'cpu') -> 'Trainer':
        r"""The trainer a checkpoint of :meth:`save` (or of :obj:`pyg-recsys
        train --out`) describes: its graph, the model rebuilt by name with
        the selected weights loaded, and its settings, on :obj:`device`.
        Use :obj:`trainer.model` and :obj:`trainer.graph`, or
        :meth:`evaluate` and :meth:`recommend` directly. A checkpoint of a
        model that is not registered by name cannot be rebuilt (its error
        says so)."""
        from pyg_recsys.train.config import build_model
        resolve_device(device)
        state = load_checkpoint(path)
        if not isinstance(state, dict) or \
                state.get('format') != 'pyg_recsys/checkpoint/1':
            raise ValueError(f"'{path}' is not a pyg_recsys training "
                             f"checkpoint")
        meta = state.get('meta', {})
        if 'model' not in meta:
            raise ValueError(f"'{path}' does not say which model it holds: "
                             f"it was saved from a model that is not "
                             f"registered by name (register it with "
                             f"pyg_recsys.nn.models.register_model, or pass "
                             f"meta={{'model': ..., 'model_kwargs': ...}} to "
                             f"the Trainer)")
        if state.get('graph') is not None:
            graph = InteractionGraph.from_state_dict(state['graph'])
        elif 'data' in meta or 'dataset' in meta:  # checkpoints before 0.2
            from pyg_recsys.cli import _load_graph
            spec = meta.get('data') or {
                'dataset': meta['dataset'], 'split': meta.get('split', ''),
                'data_seed': meta.get('data_seed', 0), 'root': None}
            graph = _load_graph(spec)
        else:
            raise ValueError(f"'{path}' holds neither its graph nor where "
                             f"its data came from")
        import pyg_recsys.text.builders  # noqa: F401  (registers text-*)
        model = build_model(meta['model'], graph,
                            **meta.get('model_kwargs', {}))
        model.load_state_dict(state['best_state'] or state['model'])
        config = TrainConfig.from_dict({**state['config'], 'device': device})
        return cls(model, graph, config, progress=False, meta=meta,
                   evaluators=protocol_evaluators(meta.get('protocol'),
                                                  graph, config))

    def plot(self, path: str) -> Optional[str]:
        r"""Draws the training loss and the evaluation metrics against the
        epoch into :obj:`path` (needs matplotlib; skipped without it)."""
        from pyg_recsys.train.curves import plot_curves
        train = [r for r in self.history if r['kind'] == 'train']
        evals = [r for r in self.history if r['kind'] == 'eval']
        k = max(self.config.ks)
        metrics = {}
        for split in ('valid', 'test'):
            pts = [(r['epoch'], r[split]) for r in evals if split in r]
            for key in (f'recall@{k}', f'ndcg@{k}'):
                if pts and key in pts[0][1]:
                    metrics[f'{split} {key}'] = [(e, m[key]) for e, m in pts]
        name = self.meta.get('model', type(self.model).__name__)
        return plot_curves(path, [(r['epoch'], r['loss']) for r in train],
                           metrics, f"{name} on "
                           f"{self.meta.get('dataset', self.graph.name)}")
