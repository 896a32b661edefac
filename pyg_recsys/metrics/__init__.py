r"""Ranking metrics, the exact full-ranking evaluator, and click-through
metrics."""
from pyg_recsys.metrics.ctr import (
    auc,
    batch_mean_auc,
    calibration,
    ctr_metrics,
    gauc,
    log_loss,
)
from pyg_recsys.metrics.evaluator import Evaluator, topk, topk_scores
from pyg_recsys.metrics.gte_protocol import batch_mean_of_means, gte_protocol_metrics
from pyg_recsys.metrics.protocols import reclm_protocol, sheaf4rec_code_metrics
from pyg_recsys.metrics.ranking import METRICS, ranking_metrics

__all__ = ['Evaluator', 'topk', 'topk_scores', 'ranking_metrics', 'METRICS',
           'sheaf4rec_code_metrics', 'reclm_protocol', 'gte_protocol_metrics',
           'batch_mean_of_means', 'auc', 'gauc', 'batch_mean_auc', 'log_loss',
           'calibration', 'ctr_metrics']
