"""GET /fetch: a queue body filled by a worker, sent chunk by chunk, stopped with the client."""

import logging
from functools import partial
from itertools import pairwise

import bottle
import gevent
import gevent.socket
import webtest
from gevent.event import Event
from gevent.pywsgi import WSGIServer

from {{ cookiecutter.package_name }} import fetch
from {{ cookiecutter.package_name }}.fetch import DemoWorker


def expected_chunks(count: int) -> list[str]:
    return [f"chunk {n} of {count}" for n in range(1, count + 1)]


def test_fetch_returns_every_chunk_in_order(app, settings):
    response = app.get("/fetch")
    assert response.text.splitlines() == expected_chunks(settings.fetch_chunks)
    assert response.content_type == "text/plain"
    assert response.headers["X-Accel-Buffering"] == "no"


def test_demo_worker_reports_data_then_finish():
    events = []
    finished = Event()
    worker = DemoWorker(chunks=3, interval=0.01)
    worker.on_data(events.append)
    worker.on_finish(finished.set)
    worker.start()
    assert finished.wait(5)
    assert events == ["chunk 1 of 3\n", "chunk 2 of 3\n", "chunk 3 of 3\n"]
    with gevent.Timeout(5):
        while worker.running:
            gevent.sleep(0.01)


def test_stopped_worker_reports_nothing_more():
    events = []
    first = Event()
    worker = DemoWorker(chunks=100, interval=0.05)
    worker.on_data(lambda chunk: (events.append(chunk), first.set()))
    worker.start()
    assert first.wait(5)
    worker.stop()
    seen = len(events)
    gevent.sleep(0.3)  # six intervals: a worker still running would have reported more
    assert 1 <= seen < 100
    assert len(events) == seen
    assert not worker.running


def test_worker_stops_when_the_client_goes_away(settings):
    """pywsgi closes the body when a write to a departed client fails; that must stop the worker."""
    workers = []

    def make_worker():
        workers.append(DemoWorker(chunks=1000, interval=0.02))
        return workers[-1]

    app = bottle.Bottle()
    fetch.install(app, settings, make_worker=make_worker)
    # gevent's own server and sockets work here without monkey-patching this process.
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        client = gevent.socket.create_connection(server.address)
        client.sendall(b"GET /fetch HTTP/1.1\r\nHost: test\r\n\r\n")
        assert b"chunk 1 of 1000" in client.recv(4096)
        assert workers[0].running
        client.close()
        with gevent.Timeout(5):
            while workers[0].running:
                gevent.sleep(0.02)
    finally:
        server.stop()


def test_fetch_chunks_arrive_over_time(live_server, settings, read_lines_timed):
    lines = read_lines_timed(f"{live_server.url}/fetch")

    assert [text for text, _ in lines] == expected_chunks(settings.fetch_chunks)
    arrivals = [seconds for _, seconds in lines]
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    # Each chunk was sent when the worker produced it, one interval after the one before.
    assert all(gap >= settings.fetch_interval * 0.8 for gap in gaps), gaps


class FailingWorker(DemoWorker):
    def produce(self, number: int) -> str:
        if number == 2:
            raise RuntimeError("upstream broke")
        return super().produce(number)


def test_failing_worker_ends_its_response_and_is_logged(settings, caplog):
    app = bottle.Bottle()
    fetch.install(app, settings, make_worker=partial(FailingWorker, 3, 0.01))
    with caplog.at_level(logging.ERROR):
        response = webtest.TestApp(app).get("/fetch")
    assert response.text == "chunk 1 of 3\n"
    assert "fetch worker failed after 1 of 3 chunks" in caplog.text
