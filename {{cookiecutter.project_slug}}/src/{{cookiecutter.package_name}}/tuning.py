"""Process-wide tuning for thousands of long-lived connections in one process.

Applied the same way by server.py and by the gunicorn worker. Each change is measured in
bench/ of the template this project came from.
"""

import contextvars
import gc
import os
import resource

import bottle
import gevent

# Bottle keeps bottle.request and bottle.response in these thread-local properties.
BOTTLE_LOCALS = {
    bottle.LocalRequest: ("environ",),
    bottle.LocalResponse: ("_status_line", "_status_code", "_cookies", "_headers", "body"),
}
_UNSET = object()

# Collect the youngest generation after this many new objects instead of Python's 700.
GC_THRESHOLD = (50_000, 20, 10)


def tune_process() -> None:
    """Everything below but the file limit, which the caller checks against its settings."""
    # Spawning tracks each greenlet's parent and stack, for debugging; one greenlet per
    # connection makes that a cost on every connection. GEVENT_TRACK_GREENLET_TREE=1 keeps it.
    gevent.config.track_greenlet_tree = os.environ.get("GEVENT_TRACK_GREENLET_TREE", "0") == "1"
    keep_bottle_state_in_contextvars()
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

    Each open connection holds a few dozen objects that the cycle collector must walk. With
    5,000 of them, Python's defaults ran a full collection of about 0.1 s every few thousand
    requests and spent 14% of the server's CPU in the collector. Cyclic garbage is rare on
    the request path, so it may wait a little longer; freezing moves everything that exists
    now (modules, routes, settings) out of the collector's sight for good.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def keep_bottle_state_in_contextvars() -> None:
    """Store Bottle's per-request state in context variables instead of thread-locals.

    Monkey-patched, each of Bottle's six thread-locals gives every greenlet a dict, a weak
    reference and a callback of its own: about 2.5 KiB per open connection, and a tenth of a
    short request's CPU time. Each greenlet has its own contextvars context, so context
    variables keep requests apart just the same, for a fraction of that. A Bottle that keeps
    its state some other way is left alone.
    """
    properties = [(cls, name) for cls, names in BOTTLE_LOCALS.items() for name in names]
    if all(isinstance(cls.__dict__.get(name), property) for cls, name in properties):
        for cls, name in properties:
            setattr(cls, name, _context_property(f"bottle.{cls.__name__}.{name}"))


def _context_property(name: str) -> property:
    var = contextvars.ContextVar(name, default=_UNSET)

    def get(_):
        value = var.get()
        if value is _UNSET:
            raise RuntimeError("Request context not initialized.")  # as Bottle says it
        return value

    return property(get, lambda _, value: var.set(value), lambda _: var.set(_UNSET))
