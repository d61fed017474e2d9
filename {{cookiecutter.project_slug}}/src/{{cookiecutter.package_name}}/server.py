"""Serve the app with gevent: a greenlet per connection, so thousands may wait at once."""

from gevent import monkey

# Before anything else imports socket, ssl, threading or time: from here on, blocking calls
# yield to other greenlets instead of holding the whole process.
monkey.patch_all()

import contextvars
import logging
import os
import resource
import signal

import bottle
import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

from .app import create_app
from .http_handler import make_handler
from .settings import Settings
{%- if cookiecutter.use_websocket %}
from .websocket_handler import configure as configure_websocket_handler
{%- endif %}

log = logging.getLogger(__name__)

# Spawning tracks each greenlet's parent and stack, for debugging; one greenlet per connection
# makes that a cost on every connection. GEVENT_TRACK_GREENLET_TREE=1 turns it back on.
gevent.config.track_greenlet_tree = os.environ.get("GEVENT_TRACK_GREENLET_TREE", "0") == "1"


def raise_open_file_limit() -> int:
    """Every connection is a file descriptor: use the hard limit, not the often-low soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


# Bottle keeps bottle.request and bottle.response in these thread-local properties.
BOTTLE_LOCALS = {
    bottle.LocalRequest: ("environ",),
    bottle.LocalResponse: ("_status_line", "_status_code", "_cookies", "_headers", "body"),
}
_UNSET = object()


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


class Server:
    """The gevent server and what it runs beside the app: keep-alive pings and shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        keep_bottle_state_in_contextvars()
{%- if cookiecutter.use_websocket %}
        # Upgrades WebSocket handshakes and hands the socket to the route as wsgi.websocket.
        self.websocket_handler = configure_websocket_handler(settings)
        handler = make_handler(settings, self.websocket_handler)
{%- else %}
        handler = make_handler(settings)
{%- endif %}
        self.wsgi = WSGIServer(
            (settings.host, settings.port),
            create_app(settings),
            handler_class=handler,
            backlog=settings.listen_backlog,
            # A pool caps concurrent connections and lets stop() wait for open requests.
            spawn=Pool(settings.max_connections),
            log=logging.getLogger(f"{__package__}.access"),
            error_log=logging.getLogger(f"{__package__}.errors"),
        )
        self.background: list[gevent.Greenlet] = []

    def start(self) -> None:
        limit = raise_open_file_limit()
        if limit < self.settings.max_connections + 64:
            log.warning(
                "open-file limit %d is below max_connections %d: raise `ulimit -n`",
                limit,
                self.settings.max_connections,
            )
        self.wsgi.start()
{%- if cookiecutter.use_websocket %}
        if self.settings.ping_interval > 0:
            self.background.append(
                gevent.spawn(
                    self.websocket_handler.keep_alive,
                    self.settings.ping_interval,
                    self.settings.ping_timeout,
                )
            )
{%- endif %}
        host, port = self.wsgi.address[:2]
        log.info("listening on http://%s:%d", host, port)

    def shutdown(self) -> None:
        """Stop accepting, tell WebSocket clients, let open requests finish, then stop."""
        timeout = self.settings.shutdown_timeout
        log.info("shutting down; open requests get %.1f s to finish", timeout)
        self.wsgi.close()  # no new connections from here on
{%- if cookiecutter.use_websocket %}
        closing = self.websocket_handler.close_all(1001, "server shutting down")
        if closing:
            log.info("sent 'going away' to %d WebSocket clients", closing)
{%- endif %}
        self.wsgi.stop(timeout=timeout)
        gevent.killall(self.background)
        log.info("stopped")


def serve(settings: Settings) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then shut down gracefully and return."""
    server = Server(settings)
    server.start()
    stop = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop.set)
    stop.wait()
    server.shutdown()
