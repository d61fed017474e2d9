"""The open WebSockets of one process: keep-alive pings, and closing them all on shutdown."""

import time

import gevent

from .websocket import WebSocket


class OpenSockets:
    """Every WebSocket the process holds, and one loop that keeps them all alive.

    One loop for all sockets, instead of a greenlet each, keeps idle connections cheap.
    """

    def __init__(self, ping_interval: float, ping_timeout: float) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.sockets: set[WebSocket] = set()
        self.loop: gevent.Greenlet | None = None

    def add(self, ws: WebSocket) -> None:
        self.sockets.add(ws)

    def discard(self, ws: WebSocket) -> None:
        self.sockets.discard(ws)

    def __len__(self) -> int:
        return len(self.sockets)

    def close_all(self, code: int, reason: str) -> int:
        """Start the closing handshake on every open socket; return how many there were."""
        sockets = list(self.sockets)
        for ws in sockets:
            gevent.spawn(ws.close, code, reason)
        return len(sockets)

    def start(self) -> None:
        """Run the keep-alive loop in a greenlet of its own, unless pings are turned off."""
        if self.ping_interval > 0 and self.loop is None:
            self.loop = gevent.spawn(self.keep_alive)

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.kill()
            self.loop = None

    def keep_alive(self) -> None:
        """Ping sockets quiet for `ping_interval`; drop those silent `ping_timeout` longer."""
        interval, timeout = self.ping_interval, self.ping_timeout
        tick = min(1.0, interval / 4, timeout / 4)
        while True:
            gevent.sleep(tick)
            now = time.monotonic()
            for ws in list(self.sockets):
                quiet = now - ws.last_seen
                if quiet >= interval + timeout:
                    gevent.spawn(ws.abort, 1011, "no answer to ping")
                elif quiet >= interval and ws.pinged_at <= ws.last_seen:
                    ws.pinged_at = now
                    gevent.spawn(ws.ping)
