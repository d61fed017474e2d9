"""Serve an app with gevent: a greenlet per connection, so thousands may wait at once."""

from gevent import monkey

# Before anything else imports socket, ssl, threading or time: from here on, blocking calls
# yield to other greenlets instead of holding the whole process.
monkey.patch_all()

import logging
import signal

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

from .handler import ACCESS_LOG
from .lifecycle import Runtime
from .settings import ServerSettings

log = logging.getLogger(__name__)


def serve(app, settings: ServerSettings) -> None:
    """Serve `app` until SIGINT (Ctrl-C) or SIGTERM, then shut down gracefully and return."""
    runtime = Runtime(settings)
    server = WSGIServer(
        (settings.host, settings.port),
        app,
        handler_class=runtime.handler_class,
        backlog=settings.listen_backlog,
        # A pool caps concurrent connections and lets stop() wait for open requests.
        spawn=Pool(settings.max_connections),
        log=ACCESS_LOG,
        error_log=logging.getLogger(f"{__package__}.errors"),
    )
    server.start()
    runtime.start()
    host, port = server.address[:2]
    log.info("listening on http://%s:%d", host, port)

    stop = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop.set)
    stop.wait()

    log.info("shutting down; open requests get %.1f s to finish", settings.shutdown_timeout)
    server.close()  # no new connections from here on
    runtime.going_away()
    server.stop(timeout=settings.shutdown_timeout)
    runtime.stop()
    log.info("stopped")
