r"""Training curves: the loss and validation metrics against the epoch."""
from typing import Dict, List, Optional, Sequence, Tuple


def plot_curves(path: str, losses: Sequence[Tuple[int, float]],
                metrics: Dict[str, List[Tuple[int, float]]],
                title: Optional[str] = None) -> Optional[str]:
    r"""Draws :obj:`losses` (epoch, value) on the left and every curve of
    :obj:`metrics` (label -> [(epoch, value)]) on the right into
    :obj:`path`; returns it, or :obj:`None` without matplotlib or losses."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not losses:
        return None
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax0.plot([e for e, _ in losses], [v for _, v in losses])
    ax0.set_xlabel('epoch')
    ax0.set_ylabel('training loss')
    for label, pts in metrics.items():
        ax1.plot([e for e, _ in pts], [v for _, v in pts], marker='.',
                 label=label)
    ax1.set_xlabel('epoch')
    if metrics:
        ax1.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
