"""A gunicorn worker that serves connections exactly as `python -m` does.

gunicorn.conf.py: `worker_class = Worker.with_settings(settings)`. gevent-websocket's own
worker would use its own handler, without this runtime's deadlines, framing checks, handshake
checks and closes; this one swaps in the runtime's handler (with gunicorn's access log and
environ) and runs the same start and stop steps as server.py.
"""

import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from gunicorn.workers.ggevent import PyWSGIHandler

from .handler import ConnectionHandler
from .lifecycle import Runtime
from .settings import ServerSettings


class GunicornHandler(ConnectionHandler, PyWSGIHandler):
    """The runtime's handler with gunicorn's access log and environ (RAW_URI, gunicorn.sock)."""

    log_request = PyWSGIHandler.log_request


class Worker(GeventWebSocketWorker):
    settings: ServerSettings = ServerSettings()

    @classmethod
    def with_settings(cls, settings: ServerSettings) -> type["Worker"]:
        return type(cls.__name__, (cls,), {"settings": settings})

    def init_process(self) -> None:
        # Runs in the forked worker before it serves: the master process stays unpatched.
        self.runtime = Runtime(self.settings, GunicornHandler)
        self.wsgi_handler = self.runtime.handler_class
        super().init_process()

    def run(self) -> None:
        self.runtime.start()  # the app is loaded by now
        super().run()

    def handle_exit(self, sig, frame) -> None:
        # SIGTERM: gunicorn stops accepting and waits graceful_timeout for open connections;
        # tell WebSocket clients first, so they close (and reconnect elsewhere) right away.
        gevent.spawn(self.runtime.going_away)
        super().handle_exit(sig, frame)
