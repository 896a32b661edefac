r"""Ranking metrics and the exact full-ranking evaluator."""
from pyg_recsys.metrics.evaluator import Evaluator, topk, topk_scores
from pyg_recsys.metrics.ranking import METRICS, ranking_metrics

__all__ = ['Evaluator', 'topk', 'topk_scores', 'ranking_metrics', 'METRICS']
