"""pyg_recsys: graph-based recommendation on PyTorch Geometric."""
__version__ = '0.1.0'

from pyg_recsys import data, metrics, ops, typing  # noqa: E402
from pyg_recsys._lazy import lazy_exports  # noqa: E402

# ``nn`` and ``train`` load on first access: they import torch_geometric,
# which alone takes seconds (see ``_lazy``); the rest needs torch only.
__all__ = ['__version__', 'data', 'metrics', 'nn', 'ops', 'train', 'typing']
__getattr__, __dir__ = lazy_exports(
    __name__, {'nn': f'{__name__}.nn', 'train': f'{__name__}.train'})
