"""What the runtime takes from gevent, gevent-websocket and Bottle, checked on the installed
releases: if an upgrade changes one of these, this file says which, before anything subtler
breaks. pyproject.toml bounds the releases these checks have passed on."""

import io
from types import SimpleNamespace

import bottle
import pytest
from gevent.pywsgi import WSGIHandler
from geventwebsocket.handler import WebSocketHandler

from {{ cookiecutter.package_name }}.runtime.handler import ConnectionHandler
from {{ cookiecutter.package_name }}.runtime.headers import RequestHeaders


class Handler(WSGIHandler):
    MessageClass = RequestHeaders


def parsed(request: bytes, handler_class=Handler) -> WSGIHandler:
    """pywsgi's own read_request() and get_environ() over `request`, without a socket."""
    line, _, rest = request.partition(b"\r\n")
    handler = handler_class.__new__(handler_class)
    handler.rfile = io.BytesIO(rest)
    handler.socket = None
    handler.client_address = ("127.0.0.1", 1)
    handler.server = SimpleNamespace(get_environ=dict, application=bottle.Bottle())
    handler.read_request(line.decode("latin-1") + "\r\n")
    handler.environ = handler.get_environ()
    return handler


def test_pywsgi_parses_headers_with_the_message_class_and_reads_its_verdict():
    handler = parsed(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    assert isinstance(handler.headers, RequestHeaders)
    assert (handler.content_length, handler.close_connection) == (3, True)
    assert handler.environ["CONTENT_LENGTH"] == "3"
    with pytest.raises(ValueError, match="headers status"):
        parsed(b"GET / HTTP/1.1\r\nbad line\r\n\r\n")


def test_pywsgi_gives_an_upgrade_request_the_raw_reader_which_the_runtime_takes_away():
    request = (
        b"POST /x HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: foo\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert not hasattr(parsed(request).environ["wsgi.input"], "chunked_input")  # raw: unframed
    framed = parsed(request, ConnectionHandler).environ["wsgi.input"]
    assert framed.read() == b"abc" and framed.read() == b""


def test_bottle_de_chunks_a_body_whose_environ_says_chunked():
    """Why the runtime drops HTTP_TRANSFER_ENCODING once pywsgi has de-chunked a body."""
    environ = {
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"3\r\nabc\r\n0\r\n\r\n"),
    }
    assert bottle.BaseRequest(environ).body.read() == b"abc"


def test_bottle_routes_keep_their_config_and_match_refuses_with_http_errors():
    app = bottle.Bottle()
    app.route("/ws/<name>", "GET", lambda name: None, websocket="marker")
    route, arguments = app.match({"REQUEST_METHOD": "GET", "PATH_INFO": "/ws/a"})
    assert (route.config.get("websocket"), arguments) == ("marker", {"name": "a"})
    with pytest.raises(bottle.HTTPError):
        app.match({"REQUEST_METHOD": "GET", "PATH_INFO": "/elsewhere"})


def test_gevent_websocket_prepares_a_101_when_environ_holds_a_websocket():
    handler = parsed(
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", WebSocketHandler
    )
    handler.environ["wsgi.websocket"] = object()
    handler.start_response("101 Switching Protocols", [])
    assert handler.close_connection and not handler.response_use_chunked
