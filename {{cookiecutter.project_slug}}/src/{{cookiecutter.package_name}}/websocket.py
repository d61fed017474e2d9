"""GET /websocket: a WebSocket echo endpoint, the primer's last example.

The primer's route takes `request.environ['wsgi.websocket']` and answers a plain request with
`abort(400)`; `websocket_route` does both (runtime/routing.py) and hands the route the socket.
"""

import bottle
from geventwebsocket.exceptions import WebSocketError

from .runtime.routing import websocket_route
from .runtime.websocket import WebSocket
from .settings import Settings


def install(app: bottle.Bottle, settings: Settings) -> None:
    @websocket_route(app, "/websocket")
    def echo(ws: WebSocket) -> None:
        try:
            # receive() returns None once the client has closed the connection.
            while (message := ws.receive()) is not None:
                ws.send(message, binary=not isinstance(message, str))
        except WebSocketError:
            pass  # the client vanished mid-send: nothing left to answer
