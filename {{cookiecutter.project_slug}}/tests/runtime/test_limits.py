"""Deadlines and caps that keep slow or greedy clients from holding the server: each against the
real server, with a well-behaved client served meanwhile."""

import socket
import threading
import time
from contextlib import suppress

import pytest

from .support import assert_still_serving, exchange, read_all, stats, statuses, wait_until


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.parametrize(
    "head",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: te"],
    ids=["silent", "slow-headers"],
)
def test_client_without_a_whole_request_is_dropped(start_server, head):
    live = start_server(header_timeout=0.5)
    with connect(live.port) as slow:
        slow.sendall(head)
        started = time.monotonic()
        assert read_all(slow, 5.0) == (b"", True)
        assert 0.4 < time.monotonic() - started < 3.0
    assert_still_serving(live)


def test_slow_bodies_get_408_and_free_their_slots(start_server):
    """Twenty clients that announce a body and send one byte every 0.2 s hold no slot past the
    body deadline, and a client that comes meanwhile is served."""
    live = start_server(body_timeout=1.0, max_connections=22)
    clients = [connect(live.port) for _ in range(20)]
    for sock in clients:
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.2):
            for sock in clients:
                with suppress(OSError):  # answered and closed already
                    sock.send(b"x")

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        started = time.monotonic()
        answers = [read_all(sock, 5.0) for sock in clients]
        assert time.monotonic() - started < 4.0
        assert all(statuses(response) == [408] and closed for response, closed in answers), answers
        assert_still_serving(live)
    finally:
        stop.set()
        thread.join()
        for sock in clients:
            sock.close()


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(start_server):
    live = start_server(write_timeout=0.5)
    with connect(live.port) as greedy:
        greedy.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(2.0)  # reads nothing while the server's write waits
        assert_still_serving(live)
        assert "read nothing for" in live.log
        # What it finally reads ends early: the server gave up on it.
        received, closed = read_all(greedy, 5.0)
        assert closed
        assert len(received) < 16 << 20


def test_a_client_that_pipelines_and_never_reads_is_dropped(start_server):
    live = start_server(write_timeout=0.5)
    greedy = socket.socket()
    greedy.setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
    )  # before connecting: a small window
    greedy.settimeout(10)
    greedy.connect(("127.0.0.1", live.port))
    with greedy:
        with suppress(OSError):  # the server may drop it while it is still sending
            greedy.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" * 100_000)
        deadline = time.monotonic() + 10
        while "read nothing for" not in live.log:
            assert time.monotonic() < deadline, live.log[-2000:]
            time.sleep(0.1)
    assert_still_serving(live)


def test_at_max_connections_new_clients_wait_and_existing_ones_work(start_server):
    live = start_server(max_connections=2, header_timeout=5.0)
    first, second = connect(live.port), connect(live.port)
    for held in (first, second):
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # headers not finished yet
    time.sleep(0.2)

    # A third client is not accepted while both slots are taken...
    with pytest.raises(TimeoutError), connect(live.port) as third:
        third.settimeout(0.5)
        third.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        third.recv(1)

    # ...while the clients holding them are still served,
    for held in (first, second):
        held.sendall(b"Connection: close\r\n\r\n")
        response, closed = read_all(held, 5.0)
        assert statuses(response) == [200] and closed
        held.close()
    # ...and once they are gone, new clients get in again.
    response, _ = exchange(
        live.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert statuses(response) == [200]


def test_a_waiting_response_notices_at_once_that_its_client_has_gone(start_server):
    live = start_server()
    with connect(live.port) as poller:
        poller.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(lambda: stats(live)["waiting"] == 1)
    gone = "the departed client's request is still waiting"
    wait_until(lambda: stats(live)["waiting"] == 0, 2, gone)  # not the 30 s it would wait


def test_a_pipelined_request_is_not_taken_for_a_departure(start_server):
    live = start_server()
    with connect(live.port) as poller:
        poller.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n" + b"GET /healthz HTTP/1.1\r\n\r\n")
        wait_until(lambda: stats(live)["waiting"] == 1)
        time.sleep(0.5)  # time enough to take the pipelined bytes for a departure, if it would
        assert stats(live)["waiting"] == 1
