"""pyg_recsys: graph-based recommendation on PyTorch Geometric."""
__version__ = '0.1.0'

from pyg_recsys import data, metrics, nn, ops, typing  # noqa: E402

__all__ = ['__version__', 'data', 'metrics', 'nn', 'ops', 'typing']
