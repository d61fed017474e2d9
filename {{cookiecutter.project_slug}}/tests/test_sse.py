"""GET /events: the primer's stream as Server-Sent Events: framing, timing, and resuming."""

import socket
from dataclasses import replace

import pytest
import webtest
from conftest import EventReader

from {{ cookiecutter.package_name }}.app import create_app


def parse(body: str) -> list[dict]:
    """The blocks of a text/event-stream body, each a dict of its fields (comments: ":")."""
    blocks = []
    for block in body.split("\n\n"):
        if block:
            fields = {}
            for line in block.split("\n"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            blocks.append(fields)
    return blocks


def test_events_are_three_with_ids_after_a_retry_hint(app):
    response = app.get("/events")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert parse(response.text) == [
        {"retry": "3000"},
        {"id": "1", "data": "START"},
        {"id": "2", "data": "MIDDLE"},
        {"id": "3", "data": "END"},
    ]


def test_idle_streams_get_heartbeat_comments(settings):
    quick = replace(settings, sse_heartbeat=0.1, stream_delays=(0.35, 0.25))
    client = webtest.TestApp(create_app(quick))
    blocks = parse(client.get("/events").text)
    assert [block.get("data") for block in blocks if "data" in block] == ["START", "MIDDLE", "END"]
    # 0.35 s: three heartbeats, then MIDDLE; 0.25 s: two, then END.
    assert [sorted(block) for block in blocks].count([""]) == 5


@pytest.mark.parametrize(
    ("last", "expected"),
    [("1", ["MIDDLE", "END"]), ("2", ["END"]), ("", ["START", "MIDDLE", "END"])],
)
def test_a_reconnect_continues_after_its_last_event(app, last, expected):
    body = app.get("/events", headers={"Last-Event-ID": last}).text
    assert [block["data"] for block in parse(body) if "data" in block] == expected


def test_after_the_last_event_a_reconnect_is_told_to_stop(app):
    response = app.get("/events", headers={"Last-Event-ID": "3"}, status=204)
    assert response.body == b""


@pytest.mark.parametrize("last", ["abc", "4", "0", "-1", "1" * 5000])
def test_an_id_this_stream_never_sent_gets_400(app, last):
    response = app.get("/events", headers={"Last-Event-ID": last}, status=400)
    assert "Last-Event-ID must be an id this stream sent" in response.text


def test_events_arrive_one_by_one_over_a_real_socket(live_server, settings):
    reader = EventReader(f"{live_server.url}/events")
    try:
        start, middle, end = reader.next(), reader.next(), reader.next()
        with pytest.raises(EOFError):
            reader.next()
    finally:
        reader.close()
    assert [event["data"] for event in (start, middle, end)] == ["START", "MIDDLE", "END"]
    assert reader.retry == 3000
    first_pause, second_pause = settings.stream_delays
    # Each event left the server when it was produced, not all at the end.
    assert start["at"] < first_pause * 0.8
    assert middle["at"] - start["at"] >= first_pause * 0.8
    assert end["at"] - middle["at"] >= second_pause * 0.8


def test_a_dropped_stream_resumes_after_its_last_event_id(live_server):
    reader = EventReader(f"{live_server.url}/events")
    first = reader.next()
    reader.close()  # the connection drops after the first event
    resumed = EventReader(f"{live_server.url}/events", last_event_id=first["id"])
    try:
        assert [resumed.next()["data"], resumed.next()["data"]] == ["MIDDLE", "END"]
    finally:
        resumed.close()


def test_a_stream_cut_mid_way_frees_the_server_for_others(live_server):
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"START" not in received:
            received += sock.recv(65536)
    reader = EventReader(f"{live_server.url}/events", last_event_id="2")
    assert reader.next()["data"] == "END"
    reader.close()
