"""A stop request that a send job can see: set when the worker process (or its work horse) gets
SIGTERM, so that the job finishes the messages in flight and gives the rest back, instead of
being killed in the middle (RQ's default) or holding a deploy for a whole job."""

import signal
import threading

_requested = threading.Event()


def requested() -> bool:
    return _requested.is_set()


def request(*_signal_args) -> None:
    _requested.set()


def handle_sigterm() -> None:
    """In the process that runs the jobs: SIGTERM becomes a stop request."""
    _requested.clear()
    signal.signal(signal.SIGTERM, request)
