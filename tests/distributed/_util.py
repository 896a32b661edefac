import socket
import time

import torch.multiprocessing as mp


def free_port() -> int:
    r"""A TCP port on 127.0.0.1 that is free now (for a gloo rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def spawn(fn, args, nprocs: int, timeout: float = 180.0) -> None:
    r"""Runs :obj:`fn(rank, *args)` in :obj:`nprocs` spawned processes and
    waits at most :obj:`timeout` seconds: a process that raises fails the
    test with its traceback, one still running then is killed and fails it
    by name (so that a hang costs one test, never the whole run)."""
    ctx = mp.start_processes(fn, args=args, nprocs=nprocs, join=False,
                             start_method='spawn')
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                hung = [r for r, p in enumerate(ctx.processes)
                        if p.is_alive()]
                raise AssertionError(f'ranks {hung} of {nprocs} still run '
                                     f'after {timeout:.0f} s')
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
