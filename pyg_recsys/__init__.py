"""pyg_recsys: graph-based recommendation on PyTorch Geometric."""
__version__ = '0.1.0'

from pyg_recsys import typing  # noqa: E402,F401
from pyg_recsys import ops  # noqa: E402,F401
from pyg_recsys import data  # noqa: E402,F401
from pyg_recsys import nn  # noqa: E402,F401
from pyg_recsys import metrics  # noqa: E402,F401

__all__ = ['__version__', 'data', 'nn', 'ops', 'metrics']
