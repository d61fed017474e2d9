"""GET /healthz: a liveness check for load balancers, with resource counts when asked for."""

import gc
import os
import resource

import bottle
from greenlet import greenlet

from .settings import Settings


def stats() -> dict[str, int]:
    """Live objects and greenlets, open file descriptors and peak memory of this process."""
    gc.collect()  # count what is alive, not garbage waiting for the next collection
    # Objects frozen at start-up (tuning.py) are not listed, only counted: "greenlets" are
    # those started since, one per open connection plus a few background loops.
    objects = gc.get_objects()
    return {
        "objects": len(objects) + gc.get_freeze_count(),
        "greenlets": sum(1 for obj in objects if isinstance(obj, greenlet) and not obj.dead),
        "open_fds": len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def install(app: bottle.Bottle, settings: Settings) -> None:
    @app.get("/healthz")
    def healthz() -> dict:
        # Stats scan the whole heap: only when the operator has turned them on.
        return {"status": "ok", **(stats() if settings.expose_stats else {})}
