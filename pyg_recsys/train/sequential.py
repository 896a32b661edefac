r"""Training and evaluation of sequential user models on a leave-one-out
split: every training window predicts each of its next items; the model is
selected on validation NDCG@10 and reported on test, by exact full
ranking."""
import copy
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.data.sequences import SequenceData, SequenceSplit
from pyg_recsys.metrics.sequential import HISTORY, rank_metrics, target_ranks


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
        monitor (str): The validation metric that selects the model.
        ks (tuple): Cut-offs of HR and NDCG.
        history (str): History items in ranking: :obj:`'mask'`,
            :obj:`'zero'` or :obj:`'keep'` (see
            :func:`~pyg_recsys.metrics.sequential.target_ranks`).
        seed (int): Seed of initialisation and batch order.
        device (str): :obj:`'auto'`, :obj:`'cpu'`, :obj:`'cuda'`.
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

    def __post_init__(self):
        self.ks = tuple(int(k) for k in self.ks)
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
        if metric not in ('hit', 'ndcg') or not k.isdigit() or \
                int(k) not in self.ks:
            raise ValueError(f"SequenceConfig: monitor '{self.monitor}' must "
                             f"be hit@k or ndcg@k with k in {self.ks}")


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
    of a :class:`~pyg_recsys.data.sequences.SequenceSplit` and evaluates it
    by full ranking: the input of a validation target is the training
    sequence, that of a test target everything before it (the validation
    item included).

    Args:
        model (torch.nn.Module): The model (:meth:`loss`, :meth:`forward`
            and :meth:`scores` are used).
        split (SequenceSplit): From :meth:`SequenceData.leave_one_out`.
        config (SequenceConfig, optional): Settings.
        progress (bool, optional): tqdm progress bars. (default: :obj:`True`)
    """
    def __init__(self, model: torch.nn.Module, split: SequenceSplit,
                 config: Optional[SequenceConfig] = None,
                 progress: bool = True):
        from pyg_recsys.train.config import resolve_device
        self.config = cfg = config or SequenceConfig()
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.split = split
        self.progress = progress
        self.windows = training_windows(split.train, cfg.max_len)
        self.optimizer = None
        if any(p.requires_grad for p in model.parameters()):
            self.optimizer = torch.optim.Adam(
                [p for p in model.parameters() if p.requires_grad],
                lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.history: list = []
        self.epoch = 0
        self.train_seconds = 0.0

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
        for start in batches:
            idx = order[start:start + cfg.batch_size]
            seq, lengths = data.padded(users[idx], end[idx],
                                       max_len=cfg.max_len + 1)
            keep = lengths >= 2
            if not bool(keep.any()):
                continue
            seq, lengths = seq[keep].to(self.device), lengths[keep]
            self.optimizer.zero_grad(set_to_none=True)
            loss, _ = self.model.loss(seq, lengths, cfg.loss, cfg.window,
                                      **({'num_negatives': cfg.num_negatives,
                                          'generator': self.generator}
                                         if cfg.num_negatives else {}))
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
        r"""HR@K and NDCG@K of the current model on :obj:`'valid'` or
        :obj:`'test'`."""
        cfg, full = self.config, self.split.full
        if split == 'valid':
            users, target, back = self.split.valid_users, \
                self.split.valid_target, 2
        elif split == 'test':
            users, target, back = self.split.test_users, \
                self.split.test_target, 1
        else:
            raise ValueError(f"evaluate: split must be 'valid' or 'test', got "
                             f"'{split}'")
        self.model.eval()
        end = full.lengths[users] - back
        seq, lengths = full.padded(users, end, max_len=cfg.max_len)
        # The whole history is masked, not only the model's window.
        hist, _ = full.padded(users, end, max_len=int(end.max()))
        seq = seq.to(self.device)

        def score(start: int, stop: int) -> Tensor:
            user = self.model(seq[start:stop], lengths[start:stop])
            return self.model.scores(user)

        ranks = target_ranks(score, target, hist, cfg.history)
        return rank_metrics(ranks, cfg.ks)

    def fit(self) -> Dict[str, Any]:
        r"""Trains with early stopping on validation :attr:`monitor`, then
        restores the best model and reports it on validation and test."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        best, best_state, bad = None, None, 0
        if self.optimizer is not None:
            for _ in range(cfg.epochs):
                start = time.perf_counter()
                loss = self.train_epoch()
                self.train_seconds += time.perf_counter() - start
                self.epoch += 1
                record = {'epoch': self.epoch, 'loss': loss,
                          'train_seconds': round(self.train_seconds, 2)}
                if self.epoch % cfg.eval_every == 0:
                    record['valid'] = self.evaluate('valid')
                    value = record['valid'][cfg.monitor]
                    if best is None or value > best[1]:
                        best, bad = (self.epoch, value), 0
                        best_state = copy.deepcopy(self.model.state_dict())
                    else:
                        bad += 1
                self.history.append(record)
                if cfg.patience and bad >= cfg.patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return {'epoch': best[0] if best else self.epoch,
                'epochs_run': self.epoch,
                'train_seconds': round(self.train_seconds, 2),
                'config': asdict(self.config),
                'valid': self.evaluate('valid'),
                'test': self.evaluate('test')}
