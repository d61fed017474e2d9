"""WebSocket routes: how a feature declares one, and how the connection handler finds it.

A WebSocket route is a Bottle GET route whose `websocket` config names the function that
talks to the socket. The connection handler upgrades a handshake only on such a route: it finds
the route with Bottle's router before it upgrades, and calls the function with the socket and
the route's URL arguments. Plain HTTP requests to the same path get a 400 that says why.

    @websocket_route(app, "/echo/<room>")
    def echo(ws, room):
        while (message := ws.receive()) is not None:
            ws.send(message)

The socket is also in the request's environ as `wsgi.websocket`, as gevent-websocket puts it.
"""

from collections.abc import Callable
from urllib.parse import unquote

import bottle

WebSocketFunction = Callable[..., None]


def websocket_route(
    app: bottle.Bottle, path: str
) -> Callable[[WebSocketFunction], WebSocketFunction]:
    """Register `path` on `app` as a WebSocket route served by the decorated function."""

    def register(function: WebSocketFunction) -> WebSocketFunction:
        def plain_request(**_) -> None:
            bottle.abort(
                400, f"expected a WebSocket handshake (Upgrade: websocket) on {bottle.request.path}"
            )

        # No plugins (skip=True): a plain request only gets the 400 above.
        app.route(path, "GET", plain_request, skip=True, websocket=function)
        return function

    return register


def find_websocket_route(app: object, target: str) -> tuple[WebSocketFunction, dict] | None:
    """The function of the WebSocket route at this request target and its URL arguments; None if
    there is none (the app routes it elsewhere, or is not a Bottle app).

    A handshake is a GET: a handshake with another method on a WebSocket route is found here,
    and refused by the handshake checks with 405.
    """
    match = getattr(app, "match", None)
    if match is None:
        return None
    # The path as Bottle routes it: percent-decoded bytes read as UTF-8.
    path = unquote(target.partition("?")[0], "latin-1").encode("latin-1").decode("utf-8", "ignore")
    try:
        route, arguments = match({"REQUEST_METHOD": "GET", "PATH_INFO": path})
    except bottle.HTTPError:
        return None
    function = route.config.get("websocket")
    return (function, arguments) if function else None
