"""GET /websocket: a WebSocket echo endpoint on gevent-websocket, the primer's last example."""

import bottle
from geventwebsocket.exceptions import WebSocketError

from .settings import Settings


def install(app: bottle.Bottle, settings: Settings) -> None:
    # No plugins (skip=True): each wraps the route in one more call, and every idle socket
    # keeps a copy of that stack. A failure still closes the socket with 1011 and is logged
    # (websocket_handler.py).
    @app.get("/websocket", skip=True)
    def websocket() -> None:
        # WebSocketHandler (see server.py) puts the upgraded connection here; a plain
        # HTTP request has none.
        ws = bottle.request.environ.get("wsgi.websocket")
        if ws is None:
            bottle.abort(400, "expected a WebSocket handshake (Upgrade: websocket) on /websocket")
        try:
            # receive() returns None once the client has closed the connection.
            while (message := ws.receive()) is not None:
                ws.send(message, binary=not isinstance(message, str))
        except WebSocketError:
            pass  # the client vanished mid-send: nothing left to answer
