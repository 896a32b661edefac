r"""Fake (meta) kernels of the compiled ops, so that :func:`torch.compile`
and :func:`torch.library.opcheck` can trace them without running them."""
import torch


def register() -> None:
    @torch.library.register_fake('pyg_recsys::spmm_csr')
    def _spmm(rowptr, col, value, x):
        return x.new_empty(rowptr.size(0) - 1, x.size(1))

    @torch.library.register_fake('pyg_recsys::sddmm_csr')
    def _sddmm(rowptr, col, a, b):
        return a.new_empty(col.size(0))

    @torch.library.register_fake('pyg_recsys::light_propagate_csr')
    def _light(rowptr, col, value, x, alpha, bf16_storage=False):
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    @torch.library.register_fake('pyg_recsys::softmax_ce_rows_')
    def _softmax_ce(logits, target, groups):
        return logits.new_empty(logits.size(0))
