"""Limits that keep one misbehaving client from hurting the others."""

import json
import logging
import socket
import time
from dataclasses import replace
{%- if cookiecutter.use_fetch %}
from functools import partial
{%- endif %}
{% if cookiecutter.use_fetch %}
import bottle
{%- endif %}
import gevent
import pytest
import webtest
from conftest import http_get

from {{ cookiecutter.package_name }}.app import create_app
{%- if cookiecutter.use_fetch %}
from {{ cookiecutter.package_name }}.fetch import DemoWorker
from {{ cookiecutter.package_name }}.fetch import install as install_fetch
{%- endif %}


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes `sock` within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_healthz(app):
    assert app.get("/healthz").json == {"status": "ok"}


def test_healthz_stats_only_when_turned_on(settings):
    client = webtest.TestApp(create_app(replace(settings, expose_stats=True)))
    gevent.sleep(0)  # starts gevent's hub, itself a greenlet
    before = client.get("/healthz").json
    for _ in range(40):  # greenlets of earlier tests may still be ending: wait for a steady count
        gevent.sleep(0.05)
        settled = client.get("/healthz").json
        if settled["greenlets"] == before["greenlets"]:
            break
        before = settled
    sleeper = gevent.spawn(gevent.sleep, 10)
    gevent.sleep(0)
    after = client.get("/healthz").json
    sleeper.kill()
    assert set(after) == {"status", "objects", "greenlets", "open_fds", "max_rss_kib"}
    assert after["greenlets"] == before["greenlets"] + 1
    assert after["open_fds"] > 0
    assert after["max_rss_kib"] > 0


@pytest.mark.parametrize(
    "head",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: te"],
    ids=["silent", "slow-headers"],
)
def test_client_without_a_whole_request_is_dropped(start_server, settings, head):
    server = start_server(replace(settings, header_timeout=0.5))
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(head)
        started = time.monotonic()
        assert closed_within(slow, 5.0)
        assert 0.4 < time.monotonic() - started < 3.0
    assert http_get(server.port, "/healthz")[0] == 200


def test_at_max_connections_new_clients_wait_and_existing_ones_work(start_server, settings):
    server = start_server(replace(settings, max_connections=2, header_timeout=5.0))
    first = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    second = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    for held in (first, second):
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # headers not finished yet
    time.sleep(0.2)

    # A third client is not accepted while both slots are taken...
    with pytest.raises(TimeoutError):
        http_get(server.port, "/healthz", timeout=0.5)

    # ...while the clients holding them are still served,
    first.sendall(b"Connection: close\r\n\r\n")
    assert closed_within(first, 5.0)
    second.sendall(b"Connection: close\r\n\r\n")
    assert closed_within(second, 5.0)
    first.close()
    second.close()
    # ...and once they are gone, new clients get in again.
    assert http_get(server.port, "/healthz") == (200, b'{"status": "ok"}')


def test_failing_route_is_logged_and_answered_alone(settings, caplog):
    app = create_app(settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    client = webtest.TestApp(app)
    with caplog.at_level(logging.ERROR):
        response = client.get("/boom", status=500)
    assert response.text == "500 Internal Server Error: internal server error\n"
    assert "GET /boom failed" in caplog.text
    assert "secret detail" in caplog.text  # in the log, not in the response
    assert client.get("/healthz").json == {"status": "ok"}
{%- if cookiecutter.use_fetch %}


class FailingWorker(DemoWorker):
    def produce(self, number: int) -> str:
        if number == 2:
            raise RuntimeError("upstream broke")
        return super().produce(number)


def test_failing_worker_ends_its_response_and_is_logged(settings, caplog):
    app = bottle.Bottle()
    install_fetch(app, settings, make_worker=partial(FailingWorker, 3, 0.01))
    with caplog.at_level(logging.ERROR):
        response = webtest.TestApp(app).get("/fetch")
    assert response.text == "chunk 1 of 3\n"
    assert "fetch worker failed after 1 of 3 chunks" in caplog.text
{%- endif %}


def test_bad_request_line_gets_400_and_others_are_served(live_server):
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    status, body = http_get(live_server.port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
