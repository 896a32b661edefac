import socket


def free_port() -> int:
    r"""A TCP port on 127.0.0.1 that is free now (for a gloo rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
