r"""Pointwise click-through training: the CF features, the click model's
training with early stopping, and the baselines, on a temporal split.

Protocol (:func:`run_click_experiment`): the impressions are split by time
into history / train / valid / test windows
(:func:`~pyg_recsys.data.impressions.temporal_split`). A LightGCN is trained
on the clicks of the history window only; its vectors are the CF features of
every later impression. The click model trains on the train window with BCE,
is selected on validation AUC, and is reported on the test window; every
feature of an impression reads only events before it.
"""
import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.data.impressions import (
    HISTORY,
    Impressions,
    click_features,
    temporal_split,
)
from pyg_recsys.metrics.ctr import calibration, ctr_metrics, log_loss

VARIANTS = ('full', 'no-sequence', 'no-cf', 'logistic')


@dataclass
class ClickConfig:
    r"""Settings of :func:`run_click_experiment` (defaults: the ML-100K
    recipe)."""
    epochs: int = 40
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4     # L2 on all weights (Adam's)
    dropout: float = 0.3
    hidden: Tuple[int, ...] = (256, 128)
    item_dim: int = 16
    history: int = HISTORY
    patience: int = 5
    seed: int = 0
    cf_dim: int = 32
    cf_layers: int = 3
    cf_epochs: int = 100
    cf_lr: float = 5e-3
    fractions: Tuple[float, ...] = (0.5, 0.3, 0.1, 0.1)
    variants: Tuple[str, ...] = field(default_factory=lambda: VARIANTS)

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        unknown = set(self.variants) - set(VARIANTS)
        if unknown:
            raise ValueError(f"ClickConfig: unknown variants {sorted(unknown)}"
                             f" (expected some of {VARIANTS})")
        for name in ('epochs', 'batch_size', 'history', 'cf_dim',
                     'cf_epochs'):
            if getattr(self, name) <= 0:
                raise ValueError(f"ClickConfig: {name} must be positive, got "
                                 f"{getattr(self, name)}")
        if not (self.lr > 0 and self.cf_lr > 0 and self.weight_decay >= 0):
            raise ValueError("ClickConfig: lr and cf_lr must be positive, "
                             "weight_decay >= 0")


def cf_vectors(history: Impressions, cfg: ClickConfig
               ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""LightGCN trained (BPR) on the clicks of :obj:`history` alone:
    :obj:`(user_vectors, item_vectors, user_known, item_known)`, the last two
    marking the users and items that have a click there."""
    from pyg_recsys.data import InteractionGraph
    from pyg_recsys.data.sampler import BPRSampler
    from pyg_recsys.nn.models.lightgcn import LightGCN
    clicked = history.label > 0
    pairs = torch.unique(torch.stack([history.user[clicked],
                                      history.item[clicked]]), dim=1)
    if pairs.size(1) == 0:
        raise ValueError("cf_vectors: the history window has no clicks")
    graph = InteractionGraph(history.num_users, history.num_items, pairs)
    torch.manual_seed(cfg.seed)
    model = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                     embedding_dim=cfg.cf_dim, num_layers=cfg.cf_layers)
    adj = graph.norm_adj()
    sampler = BPRSampler(graph, seed=cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.cf_lr)
    off = graph.num_users
    for _ in range(cfg.cf_epochs):
        for u, i, j in sampler.batches(2048):
            opt.zero_grad()
            loss, _ = model.training_loss(adj, u, i + off, j + off, 1e-4)
            loss.backward()
            opt.step()
    with torch.no_grad():
        users, items = model.split_embedding(model.get_embedding(adj))
    user_known = torch.zeros(graph.num_users, dtype=torch.bool)
    item_known = torch.zeros(graph.num_items, dtype=torch.bool)
    user_known[pairs[0]] = True
    item_known[pairs[1]] = True
    return users, items, user_known, item_known


def _rows(features: Dict[str, Tensor], index: Tensor) -> Dict[str, Tensor]:
    return {k: v[index] for k, v in features.items()}


@torch.no_grad()
def predict(model: torch.nn.Module, imp: Impressions,
            features: Dict[str, Tensor], batch_size: int = 8192) -> Tensor:
    r"""Click logits of every impression of :obj:`imp`."""
    model.eval()
    out = [model(imp.user[s:s + batch_size], imp.item[s:s + batch_size],
                 _rows(features, slice(s, s + batch_size)))
           for s in range(0, len(imp), batch_size)]
    return torch.cat(out)


def fit_click_model(model: torch.nn.Module, train: Impressions,
                    train_feats: Dict[str, Tensor], valid: Impressions,
                    valid_feats: Dict[str, Tensor], cfg: ClickConfig
                    ) -> Dict[str, Any]:
    r"""BCE training with Adam (weight decay = L2), shuffled mini-batches,
    early stopping on validation AUC; the best state is loaded back.
    Returns the curve and the selected epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, bad, curve = -1.0, None, 0, []
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(train), generator=g)
        total = 0.0
        for s in range(0, len(train), cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            opt.zero_grad()
            logits = model(train.user[idx], train.item[idx],
                           _rows(train_feats, idx))
            loss = loss_fn(logits, train.label[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        metrics = ctr_metrics(predict(model, valid, valid_feats), valid.label,
                              logits=True)
        curve.append({'epoch': epoch, 'train_loss': total / len(train),
                      'valid_auc': metrics['auc'],
                      'valid_logloss': metrics['logloss']})
        if metrics['auc'] > best:
            best, best_state, bad = metrics['auc'], \
                copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if cfg.patience and bad >= cfg.patience:
                break
    model.load_state_dict(best_state)
    selected = max(curve, key=lambda r: r['valid_auc'])['epoch']
    return {'curve': curve, 'selected_epoch': selected,
            'train_seconds': time.perf_counter() - start}


def user_ctr_baseline(imp: Impressions, features: Dict[str, Tensor],
                      prior: float, strength: float) -> Tensor:
    r"""Per-user CTR: the user's earlier clicks :math:`c` over earlier
    impressions :math:`m`, smoothed towards :obj:`prior` as
    :math:`(c + a p) / (m + a)` with :math:`a` = :obj:`strength`."""
    m = features['user'][:, 2].double().expm1().round()
    rate = features['user'][:, 3].double()
    c = (rate * (m + 2) - 1).round()
    return ((c + strength * prior) / (m + strength)).float()


def _variant(name: str, imp: Impressions, cfg: ClickConfig, cf) -> Any:
    from pyg_recsys.nn.models.ctr import ClickSequenceDNN
    cf_user, cf_item, user_known, item_known = cf
    use_cf = name not in ('no-cf', )
    torch.manual_seed(cfg.seed)
    return ClickSequenceDNN(
        imp.num_items, cfg.history, cfg.item_dim,
        () if name == 'logistic' else cfg.hidden, cfg.dropout,
        cf_user if use_cf else None, cf_item if use_cf else None,
        user_known if use_cf else None, item_known if use_cf else None,
        use_sequence=name != 'no-sequence', use_cf=use_cf)


def run_click_experiment(imp: Impressions, cfg: Optional[ClickConfig] = None,
                         verbose: bool = False) -> Dict[str, Any]:
    r"""The whole protocol on :obj:`imp` (see the module docstring): the
    click model's variants and the baselines, each with test AUC, GAUC,
    log loss and calibration. Returns a JSON-able dict."""
    cfg = cfg or ClickConfig()
    start = time.perf_counter()
    windows = temporal_split(imp, cfg.fractions)
    feats = click_features(imp, cfg.history)
    parts = {k: imp.take(m) for k, m in windows.items()}
    part_feats = {k: _rows(feats, m) for k, m in windows.items()}
    cf = cf_vectors(parts['history'], cfg)
    train, valid, test = parts['train'], parts['valid'], parts['test']
    results: Dict[str, Any] = {}

    def report(name, pred, logits, extra=None):
        out = ctr_metrics(pred, test.label, groups=test.user, logits=logits)
        probs = torch.sigmoid(pred) if logits else pred
        out['calibration'] = calibration(probs, test.label)
        out.update(extra or {})
        results[name] = out
        if verbose:
            print(f"{name:>14}: AUC {out['auc']:.4f}  GAUC {out['gauc']:.4f}"
                  f"  logloss {out['logloss']:.4f}  ECE {out['ece']:.4f}")

    # Baselines without learning: the global and the per-user rate.
    prior = float(torch.cat([parts['history'].label, train.label]).mean())
    report('global-ctr', torch.full((len(test), ), prior), False)
    strengths = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
    best_a = min(strengths, key=lambda a: log_loss(
        user_ctr_baseline(valid, part_feats['valid'], prior, a), valid.label))
    report('user-ctr', user_ctr_baseline(test, part_feats['test'], prior,
                                         best_a), False,
           {'strength': best_a})
    for name in cfg.variants:
        model = _variant(name, imp, cfg, cf)
        fit = fit_click_model(model, train, part_feats['train'], valid,
                              part_feats['valid'], cfg)
        report(name, predict(model, test, part_feats['test']), True,
               {'selected_epoch': fit['selected_epoch'],
                'train_seconds': round(fit['train_seconds'], 2),
                'curve': fit['curve']})
    sizes = {k: len(v) for k, v in parts.items()}
    return {'data': imp.name, 'config': asdict(cfg), 'windows': sizes,
            'test_ctr': float(test.label.mean()), 'results': results,
            'wall_seconds': round(time.perf_counter() - start, 2)}


def summary_rows(runs: List[Dict[str, Any]],
                 keys: Tuple[str, ...] = ('auc', 'gauc', 'logloss', 'ece')
                 ) -> List[Tuple[str, ...]]:
    r"""Mean ± sd over seeds per model of the metrics :obj:`keys`."""
    import statistics
    rows = []
    for name in runs[0]['results']:
        cells = []
        for key in keys:
            vals = [r['results'][name][key] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.4f} ± {sd:.4f}")
        rows.append((name, *cells))
    return rows


def _scores(cf, imp: Impressions) -> Tensor:
    users, items, user_known, item_known = cf
    dot = (users[imp.user] * items[imp.item]).sum(-1)
    return torch.stack([dot, user_known[imp.user].float(),
                        item_known[imp.item].float()], 1)


def run_ripplenet_protocol(imp: Impressions, cfg: Optional[ClickConfig] = None,
                           folds: int = 5, batch_size: int = 1024,
                           verbose: bool = False) -> Dict[str, Any]:
    r"""The click model without the sequence on a RippleNet/KGCN rating
    file (no time): their split (:func:`ripplenet_split`, seed 555; rows of
    users without a positive training row dropped, as RippleNet does), user
    and item id embeddings, and CF features stacked out of fold: the
    training rows are cut into :obj:`folds` folds, each fold's rows get the
    score (and known flags) of a LightGCN trained on the positives of the
    other folds, validation and test rows the mean score of all fold models,
    so that no row's features come from a model that saw it. Reports test
    AUC both globally and as those codes do (the mean AUC of consecutive
    batches of :obj:`batch_size`, last partial batch dropped), log loss and
    calibration, beside the network without the CF scores and logistic
    regression."""
    from pyg_recsys.data.impressions import ripplenet_split
    from pyg_recsys.metrics.ctr import batch_mean_auc
    from pyg_recsys.nn.models.ctr import ClickSequenceDNN
    cfg = cfg or ClickConfig()
    start = time.perf_counter()
    tr, va, te = ripplenet_split(len(imp))
    liked = torch.zeros(imp.num_users, dtype=torch.bool)
    liked[imp.user[tr][imp.label[tr] > 0]] = True
    tr, va, te = (idx[liked[imp.user[idx]]] for idx in (tr, va, te))
    train, valid, test = imp.take(tr), imp.take(va), imp.take(te)
    g = torch.Generator().manual_seed(cfg.seed)
    fold = torch.randperm(len(train), generator=g) % folds
    train_cf = torch.empty(len(train), 3)
    valid_cf, test_cf = torch.zeros(len(valid), 3), torch.zeros(len(test), 3)
    for k in range(folds):
        cf = cf_vectors(train.take(fold != k), cfg)
        train_cf[fold == k] = _scores(cf, train.take(fold == k))
        valid_cf += _scores(cf, valid) / folds
        test_cf += _scores(cf, test) / folds
    results: Dict[str, Any] = {}
    for name in ('full', 'no-cf', 'logistic'):
        dense = {} if name == 'no-cf' else {'cf': 3}
        torch.manual_seed(cfg.seed)
        model = ClickSequenceDNN(
            imp.num_items, cfg.history, cfg.item_dim,
            () if name == 'logistic' else cfg.hidden, cfg.dropout,
            use_sequence=False, use_cf=False, dense=dense,
            num_users=imp.num_users, user_dim=cfg.item_dim)
        fit = fit_click_model(model, train, {'cf': train_cf}, valid,
                              {'cf': valid_cf}, cfg)
        logits = predict(model, test, {'cf': test_cf})
        out = ctr_metrics(logits, test.label, logits=True)
        out['batch_mean_auc'] = batch_mean_auc(logits, test.label,
                                               batch_size)
        out['calibration'] = calibration(torch.sigmoid(logits), test.label)
        out.update({'selected_epoch': fit['selected_epoch'],
                    'train_seconds': round(fit['train_seconds'], 2),
                    'curve': fit['curve']})
        results[name] = out
        if verbose:
            print(f"{name:>10}: AUC {out['auc']:.4f}  batch-mean AUC "
                  f"{out['batch_mean_auc']:.4f}  logloss "
                  f"{out['logloss']:.4f}  ECE {out['ece']:.4f}", flush=True)
    return {'data': imp.name, 'config': asdict(cfg), 'folds': folds,
            'batch_size': batch_size,
            'rows': {'train': len(train), 'valid': len(valid),
                     'test': len(test)},
            'results': results,
            'wall_seconds': round(time.perf_counter() - start, 2)}
