r"""Sparse operators of :obj:`pyg_recsys`, each with a pure-PyTorch path."""
from pyg_recsys.ops.csr import CSR, mark_symmetric, to_csr
from pyg_recsys.ops.propagate import light_propagate
from pyg_recsys.ops.spmm import sddmm, spmm, spmm_reference

__all__ = ['CSR', 'to_csr', 'mark_symmetric', 'spmm', 'spmm_reference',
           'sddmm', 'light_propagate']
