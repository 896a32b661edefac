r"""Training and evaluation of sequential user models on a leave-one-out
split: every training window predicts each of its next items; the model is
selected on validation NDCG@10 and reported on test, by exact full
ranking."""
import copy
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.data.sequences import (
    CONTEXT_FEATURES,
    HorizonSplit,
    SequenceData,
    SequenceSplit,
)
from pyg_recsys.metrics.sequential import (
    HISTORY,
    future_recall,
    rank_metrics,
    target_ranks,
)
from pyg_recsys.train.config import make_adam


@dataclass
class SequenceConfig:
    r"""Settings of :class:`SequenceTrainer`.

    Attributes:
        epochs (int): Maximum epochs.
        batch_size (int): Training windows per step.
        lr (float): Adam learning rate.
        weight_decay (float): Adam weight decay.
        max_len (int): History length seen by the model (the last items).
        loss (str): :obj:`'ce'` or :obj:`'cosine'` (see
            :meth:`~pyg_recsys.nn.models.SequentialUserRNN.loss`).
        window (int): Future items averaged by the cosine loss.
        num_negatives (int, optional): Sampled softmax over this many
            uniform items instead of the full softmax (:obj:`None`).
        eval_every (int): Evaluate on validation every this many epochs.
        patience (int): Evaluations without improvement before stopping
            (0: never).
        monitor (str): The validation metric that selects the model
            (:obj:`'long_recall@<long_k>'` on a horizon split too).
        ks (tuple): Cut-offs of HR and NDCG.
        history (str): History items in ranking: :obj:`'mask'`,
            :obj:`'zero'` or :obj:`'keep'` (see
            :func:`~pyg_recsys.metrics.sequential.target_ranks`).
        seed (int): Seed of initialisation and batch order.
        device (str): :obj:`'auto'`, :obj:`'cpu'`, :obj:`'cuda'`.
        context (tuple): Context features fed to the model, from
            :obj:`~pyg_recsys.data.sequences.CONTEXT_FEATURES` (the model's
            :obj:`context_dim` must be their number).
        skip_threshold (float, optional): Events rated at most this are
            skips: read as input, never targets (:obj:`None`: no skips).
        long_k (int): The cut-off of the long-term recall (a
            :class:`~pyg_recsys.data.sequences.HorizonSplit` only).
    """
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_len: int = 50
    loss: str = 'ce'
    window: int = 1
    num_negatives: Optional[int] = None
    eval_every: int = 1
    patience: int = 10
    monitor: str = 'ndcg@10'
    ks: Tuple[int, ...] = (5, 10, 20)
    history: str = 'mask'
    seed: int = 0
    device: str = 'auto'
    context: Tuple[str, ...] = ()
    skip_threshold: Optional[float] = None
    long_k: int = 20

    def __post_init__(self):
        self.ks = tuple(int(k) for k in self.ks)
        self.context = tuple(self.context)
        unknown = [f for f in self.context if f not in CONTEXT_FEATURES]
        if unknown:
            raise ValueError(f"SequenceConfig: unknown context feature(s) "
                             f"{unknown} (available: {CONTEXT_FEATURES})")
        if int(self.long_k) <= 0:
            raise ValueError(f"SequenceConfig: long_k must be positive, got "
                             f"{self.long_k}")
        for key in ('epochs', 'batch_size', 'max_len', 'window',
                    'eval_every'):
            if int(getattr(self, key)) <= 0:
                raise ValueError(f"SequenceConfig: {key} must be positive, "
                                 f"got {getattr(self, key)}")
        if not self.lr > 0 or self.weight_decay < 0 or self.patience < 0:
            raise ValueError("SequenceConfig: lr must be > 0, weight_decay "
                             "and patience >= 0")
        if self.history not in HISTORY:
            raise ValueError(f"SequenceConfig: history must be one of "
                             f"{HISTORY}, got '{self.history}'")
        metric, _, k = self.monitor.partition('@')
        if self.monitor != f'long_recall@{self.long_k}' and (
                metric not in ('hit', 'ndcg') or not k.isdigit()
                or int(k) not in self.ks):
            raise ValueError(f"SequenceConfig: monitor '{self.monitor}' must "
                             f"be hit@k or ndcg@k with k in {self.ks}, or "
                             f"long_recall@{self.long_k} (a HorizonSplit)")


def training_windows(data: SequenceData, max_len: int) -> Tuple[Tensor,
                                                                Tensor]:
    r"""Cuts every sequence into windows of at most :obj:`max_len + 1`
    items that together predict each item but the first exactly once:
    windows end at :math:`n, n - L, n - 2L, \ldots`. Returns the users and
    window ends (as :meth:`SequenceData.padded` takes them), longest
    history first within a user."""
    lengths = data.lengths
    count = ((lengths - 1).clamp(min=0) + max_len - 1) // max_len
    users = torch.repeat_interleave(torch.arange(data.num_users), count)
    first = torch.cumsum(count, 0) - count
    j = torch.arange(users.numel()) - first.repeat_interleave(count)
    end = lengths[users] - j * max_len
    return users, end


class SequenceTrainer:
    r"""Trains a sequential user model (e.g.
    :class:`~pyg_recsys.nn.models.SequentialUserRNN`) on the training part
    of a split and evaluates it by full ranking.

    * On a :class:`~pyg_recsys.data.sequences.SequenceSplit`
      (leave-one-out), the input of a validation target is the training
      sequence, that of a test target everything before it (the validation
      item included); HR@K and NDCG@K.
    * On a :class:`~pyg_recsys.data.sequences.HorizonSplit`, the two time
      scales: HR@K and NDCG@K of the first future item that is not a skip
      (short term) and :obj:`long_recall@K` over the future window's
      non-skipped items (long term).

    Args:
        model (torch.nn.Module): The model (:meth:`loss`, :meth:`forward`
            and :meth:`scores` are used).
        split (SequenceSplit or HorizonSplit): The data and its split.
        config (SequenceConfig, optional): Settings.
        progress (bool, optional): tqdm progress bars. (default: :obj:`True`)
        out_dir (str, optional): Where :obj:`checkpoint.pt` (after every
            epoch), :obj:`log.jsonl`, :obj:`final.json` and
            :obj:`curve.png` go; nothing is written without it.
    """
    def __init__(self, model: torch.nn.Module, split,
                 config: Optional[SequenceConfig] = None,
                 progress: bool = True, out_dir: Optional[str] = None):
        from pyg_recsys.train.config import resolve_device
        self.config = cfg = config or SequenceConfig()
        if not isinstance(split, (SequenceSplit, HorizonSplit)):
            raise TypeError(f"SequenceTrainer: split must be a SequenceSplit "
                            f"or a HorizonSplit, got {type(split).__name__}")
        if cfg.monitor.startswith('long_') and \
                not isinstance(split, HorizonSplit):
            raise ValueError(f"SequenceTrainer: monitor '{cfg.monitor}' "
                             f"needs a HorizonSplit")
        want = getattr(model, 'context_dim', 0)
        if want != len(cfg.context):
            raise ValueError(f"SequenceTrainer: the model reads {want} "
                             f"context features, the config names "
                             f"{len(cfg.context)} {cfg.context}")
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.split = split
        self.progress = progress
        self.windows = training_windows(split.train, cfg.max_len)
        # Per-event context and skip bits of the training and whole data.
        self._ctx = {key: data.context(cfg.context) if cfg.context else None
                     for key, data in (('train', split.train),
                                       ('full', split.full))}
        self._skip = {key: data.skips(cfg.skip_threshold)
                      if cfg.skip_threshold is not None else None
                      for key, data in (('train', split.train),
                                        ('full', split.full))}
        self.optimizer = None
        if any(p.requires_grad for p in model.parameters()):
            self.optimizer = make_adam(
                [p for p in model.parameters() if p.requires_grad],
                cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.out_dir = out_dir
        self.history: list = []
        self.epoch = 0
        self.train_seconds = 0.0
        self.best: Optional[Tuple[int, float]] = None
        self.best_state: Optional[Dict[str, Tensor]] = None
        self.bad = 0

    def _inputs(self, key: str, users: Tensor, end: Tensor, max_len: int):
        data = self.split.train if key == 'train' else self.split.full
        seq, lengths = data.padded(users, end, max_len=max_len)
        extra = {}
        if self._ctx[key] is not None:
            extra['context'] = data.values_padded(
                self._ctx[key], users, end, max_len).to(self.device)
        return seq.to(self.device), lengths, extra

    def train_epoch(self) -> float:
        cfg, data = self.config, self.split.train
        users, end = self.windows
        order = torch.randperm(users.numel(), generator=self.generator)
        self.model.train()
        total, steps = 0.0, 0
        batches = range(0, order.numel(), cfg.batch_size)
        if self.progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, leave=False, unit='batch',
                           desc=f'epoch {self.epoch + 1}')
        kwargs = {}
        if cfg.num_negatives:
            kwargs = {'num_negatives': cfg.num_negatives,
                      'generator': self.generator}
        for start in batches:
            idx = order[start:start + cfg.batch_size]
            seq, lengths, extra = self._inputs('train', users[idx], end[idx],
                                               cfg.max_len + 1)
            if self._skip['train'] is not None:
                extra['skip'] = data.values_padded(
                    self._skip['train'].float(), users[idx], end[idx],
                    cfg.max_len + 1) > 0.5
            keep = lengths >= 2
            if not bool(keep.any()):
                continue
            seq, lengths = seq[keep], lengths[keep]
            extra = {k: v[keep.to(v.device)] for k, v in extra.items()}
            self.optimizer.zero_grad(set_to_none=True)
            loss, _ = self.model.loss(seq, lengths, cfg.loss, cfg.window,
                                      **kwargs, **extra)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training diverged at epoch {self.epoch + 1}: loss is "
                    f"{float(loss.detach())} (try a lower learning rate)")
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    @torch.no_grad()
    def evaluate(self, split: str = 'test') -> Dict[str, float]:
        r"""The metrics of the current model on :obj:`'valid'` or
        :obj:`'test'` (see the class description)."""
        cfg, sp = self.config, self.split
        if split not in ('valid', 'test'):
            raise ValueError(f"evaluate: split must be 'valid' or 'test', got "
                             f"'{split}'")
        horizon = isinstance(sp, HorizonSplit)
        users = sp.valid_users if split == 'valid' else sp.test_users
        if horizon:
            end = sp.valid_end if split == 'valid' else sp.test_end
            future = sp.full.future(users, end, sp.horizon,
                                    self._skip['full'])
            has = (future >= 0).any(1)
            users, end, future = users[has], end[has], future[has]
            first = future.gather(1, (future >= 0).long().argmax(
                1, keepdim=True)).view(-1)
        else:
            end = sp.full.lengths[users] - (2 if split == 'valid' else 1)
            first = sp.valid_target if split == 'valid' else sp.test_target
        self.model.eval()
        seq, lengths, extra = self._inputs('full', users, end, cfg.max_len)
        # The whole history is masked, not only the model's window.
        hist, _ = sp.full.padded(users, end, max_len=max(int(end.max()), 1))

        def score(start: int, stop: int) -> Tensor:
            part = {k: v[start:stop] for k, v in extra.items()}
            user = self.model(seq[start:stop], lengths[start:stop], **part)
            return self.model.scores(user)

        out = rank_metrics(target_ranks(score, first, hist, cfg.history),
                           cfg.ks)
        if horizon:
            recall = future_recall(score, future, cfg.long_k, hist,
                                   cfg.history)
            out[f'long_recall@{cfg.long_k}'] = float(recall.mean())
        return out

    def fit(self, resume: bool = False) -> Dict[str, Any]:
        r"""Trains with early stopping on validation :attr:`monitor`, then
        restores the best model and reports it on validation and test.
        With :obj:`out_dir`, a checkpoint is written after every epoch and
        :obj:`resume=True` continues from it (the run ends as it would have
        without the interruption)."""
        cfg = self.config
        if not (resume and self.resume()):
            torch.manual_seed(cfg.seed)
        if self.optimizer is not None:
            while self.epoch < cfg.epochs and not (
                    cfg.patience and self.bad >= cfg.patience):
                start = time.perf_counter()
                loss = self.train_epoch()
                self.train_seconds += time.perf_counter() - start
                self.epoch += 1
                record = {'epoch': self.epoch, 'loss': loss,
                          'train_seconds': round(self.train_seconds, 2)}
                if self.epoch % cfg.eval_every == 0:
                    record['valid'] = self.evaluate('valid')
                    value = record['valid'][cfg.monitor]
                    if self.best is None or value > self.best[1]:
                        self.best, self.bad = (self.epoch, value), 0
                        self.best_state = copy.deepcopy(
                            self.model.state_dict())
                    else:
                        self.bad += 1
                self._log(record)
                self.save()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        report = {'epoch': self.best[0] if self.best else self.epoch,
                  'epochs_run': self.epoch,
                  'train_seconds': round(self.train_seconds, 2),
                  'config': asdict(self.config),
                  'valid': self.evaluate('valid'),
                  'test': self.evaluate('test')}
        if self.out_dir:
            with open(osp.join(self.out_dir, 'final.json'), 'w') as f:
                json.dump(report, f, indent=1)
            self.plot(osp.join(self.out_dir, 'curve.png'))
        return report

    # ------------------------------------------------------------------
    def _log(self, record: Dict[str, Any]) -> None:
        self.history.append(record)
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(osp.join(self.out_dir, 'log.jsonl'), 'a') as f:
                f.write(json.dumps(record) + '\n')

    def state_dict(self) -> Dict[str, Any]:
        train = self.split.train
        return {'format': 'pyg_recsys/sequence-checkpoint/1',
                'config': json.dumps(asdict(self.config)),
                'data': {'ptr': train.ptr, 'items': train.items,
                         'num_items': train.num_items},
                'epoch': self.epoch, 'train_seconds': self.train_seconds,
                'model': self.model.state_dict(),
                'optimizer': (self.optimizer.state_dict()
                              if self.optimizer is not None else None),
                'generator': self.generator.get_state(),
                'torch_rng': torch.get_rng_state(),
                'best': list(self.best) if self.best else None,
                'best_state': self.best_state, 'bad': self.bad,
                'history': json.dumps(self.history)}

    def save(self, path: Optional[str] = None) -> Optional[str]:
        r"""Atomically writes a checkpoint (default
        :obj:`out_dir/checkpoint.pt`)."""
        from pyg_recsys.train.checkpoint import save_checkpoint
        path = path or (osp.join(self.out_dir, 'checkpoint.pt')
                        if self.out_dir else None)
        if path is not None:
            save_checkpoint(self.state_dict(), path)
        return path

    def resume(self, path: Optional[str] = None) -> bool:
        r"""Continues from a checkpoint if one exists (returns whether it
        did); refuses one of other settings (the device aside) or other
        training sequences."""
        from pyg_recsys.train.checkpoint import load_checkpoint
        path = path or (osp.join(self.out_dir, 'checkpoint.pt')
                        if self.out_dir else None)
        if path is None or not osp.exists(path):
            return False
        state = load_checkpoint(path)
        if state.get('format') != 'pyg_recsys/sequence-checkpoint/1':
            raise ValueError(f"cannot resume from '{path}': not a sequence "
                             f"training checkpoint")
        ours = {k: v for k, v in json.loads(json.dumps(
            asdict(self.config))).items() if k != 'device'}
        theirs = {k: v for k, v in json.loads(state['config']).items()
                  if k != 'device'}
        if ours != theirs:
            changed = sorted(k for k in set(ours) | set(theirs)
                             if ours.get(k) != theirs.get(k))
            raise ValueError(f"cannot resume from '{path}': its settings "
                             f"differ in {changed}")
        data, train = state['data'], self.split.train
        if data['num_items'] != train.num_items or not (
                torch.equal(data['ptr'], train.ptr)
                and torch.equal(data['items'], train.items)):
            raise ValueError(f"cannot resume from '{path}': it was trained "
                             f"on other sequences")
        self.model.load_state_dict(state['model'])
        if self.optimizer is not None and state['optimizer'] is not None:
            self.optimizer.load_state_dict(state['optimizer'])
        self.generator.set_state(state['generator'])
        torch.set_rng_state(state['torch_rng'])
        self.epoch = int(state['epoch'])
        self.train_seconds = float(state['train_seconds'])
        self.best = tuple(state['best']) if state['best'] else None
        self.best_state = state['best_state']
        self.bad = int(state['bad'])
        self.history = json.loads(state['history'])
        return True

    def plot(self, path: str) -> Optional[str]:
        r"""Draws the training loss and the validation metrics against the
        epoch into :obj:`path` (needs matplotlib; skipped without it)."""
        from pyg_recsys.train.curves import plot_curves
        evals = [r for r in self.history if 'valid' in r]
        k = max(self.config.ks)
        keys = [key for key in (evals[0]['valid'] if evals else ())
                if key.endswith(f'@{k}') or key.startswith('long_')]
        return plot_curves(
            path, [(r['epoch'], r['loss']) for r in self.history],
            {f'valid {key}': [(r['epoch'], r['valid'][key]) for r in evals]
             for key in keys})
