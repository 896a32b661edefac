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


def fit_timed(factories) -> tuple:
    """Builds each ``(name, factory)`` (graph generators, for instance) and
    times it; returns the objects and the seconds by name."""
    out, seconds = {}, {}
    for name, factory in factories:
        start = time.perf_counter()
        out[name] = factory()
        seconds[name] = round(time.perf_counter() - start, 3)
        print(f'  fitted {out[name]} in {seconds[name]:.1f} s', flush=True)
    return out, seconds


def train_report(model, graph, config, seed: int) -> dict:
    """Trains ``model`` with a Trainer and returns the seed, epochs run,
    training and wall seconds and the test metrics of the run."""
    from pyg_recsys.train import Trainer
    start = time.perf_counter()
    report = Trainer(model, graph, config, progress=False).fit()
    return {'seed': seed, 'epochs_run': report['epochs_run'],
            'train_seconds': report['train_seconds'],
            'wall_seconds': round(time.perf_counter() - start, 3),
            'test': report['test']}


def mean_sd(runs, key: str) -> tuple:
    """Mean and sample standard deviation (0 for one run) of a test metric
    over runs of :func:`train_report`."""
    vals = [r['test'][key] for r in runs]
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1
                                   else 0.0)
