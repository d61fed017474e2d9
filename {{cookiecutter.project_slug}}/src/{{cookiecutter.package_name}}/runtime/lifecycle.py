"""What `python -m` (server.py) and gunicorn (gunicorn.py) share: the configured connection
handler, the open WebSockets, and the steps to start serving and to stop."""

import logging

from .handler import ConnectionHandler
from .keepalive import OpenSockets
from .settings import ServerSettings
from .tuning import raise_open_file_limit, tune_process

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self, settings: ServerSettings, handler: type[ConnectionHandler] = ConnectionHandler
    ) -> None:
        self.settings = settings
        self.sockets = OpenSockets(settings.ping_interval, settings.ping_timeout)
        self.handler_class = handler.configure(settings, self.sockets)

    def start(self) -> None:
        """Call when the app is loaded, just before serving."""
        limit = raise_open_file_limit()
        if limit < self.settings.max_connections + 64:
            log.warning(
                "open-file limit %d is below max_connections %d: raise `ulimit -n`",
                limit,
                self.settings.max_connections,
            )
        tune_process()  # last: start-up objects are frozen out of the garbage collector's way
        self.sockets.start()

    def going_away(self) -> None:
        """Tell every WebSocket client the server is going away (1001), so they reconnect."""
        closing = self.sockets.close_all(1001, "server shutting down")
        if closing:
            log.info("sent 'going away' to %d WebSocket clients", closing)

    def stop(self) -> None:
        self.sockets.stop()
