"""Process-wide tuning for thousands of long-lived connections in one process.

Applied the same way by `python -m` and by the gunicorn worker (lifecycle.py).
"""

import gc
import os
import resource

import gevent

# Collect the youngest generation after this many new objects instead of Python's 700.
GC_THRESHOLD = (50_000, 20, 10)


def tune_process() -> None:
    """Call once the app is built, just before serving."""
    # Spawning tracks each greenlet's parent and stack, for debugging; one greenlet per
    # connection makes that a cost on every connection. GEVENT_TRACK_GREENLET_TREE=1 keeps it.
    gevent.config.track_greenlet_tree = os.environ.get("GEVENT_TRACK_GREENLET_TREE", "0") == "1"
    tune_garbage_collector()


def raise_open_file_limit() -> int:
    """Every connection is a file descriptor: use the hard limit, not the often-low soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


def tune_garbage_collector() -> None:
    """Collect less often, and never walk the objects made at start-up.

    Each open connection holds a few dozen objects that the cycle collector must walk; with
    thousands of them, Python's defaults spend a good share of the server's CPU in full
    collections. Cyclic garbage is rare on the request path, so it may wait a little longer;
    freezing moves everything that exists now (modules, routes, settings) out of the
    collector's sight for good.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
