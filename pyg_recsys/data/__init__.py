r"""Interaction graphs, readers, data sets, splits and samplers."""
from pyg_recsys.data.graph import InteractionGraph

__all__ = ['InteractionGraph']
