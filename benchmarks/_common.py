"""Helpers shared by the benchmark scripts."""
import os
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def data_root() -> str:
    """``$PYG_RECSYS_DATA``, else ``../shared/data`` beside the repository."""
    return os.environ.get('PYG_RECSYS_DATA',
                          osp.join(osp.dirname(REPO), 'shared', 'data'))


def require_dataset(name: str) -> str:
    root = data_root()
    if not osp.isdir(osp.join(root, name)):
        print(f'skipped: {name} not found under {root} (set PYG_RECSYS_DATA)')
        sys.exit(0)
    return root


def timeit(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_note() -> str:
    """The 1-minute load average, to print beside timings."""
    try:
        return f'load average {os.getloadavg()[0]:.2f}'
    except OSError:
        return 'load average unknown'
