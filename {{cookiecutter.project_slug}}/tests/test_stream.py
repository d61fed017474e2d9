"""GET /stream: the parts, their headers, and that they really arrive apart over a socket."""

from concurrent.futures import ThreadPoolExecutor


def test_stream_sends_start_middle_end(app):
    response = app.get("/stream")
    assert response.text == "START\nMIDDLE\nEND\n"
    assert response.content_type == "text/plain"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["Cache-Control"] == "no-cache"


def test_stream_parts_arrive_separately_over_time(live_server, settings, read_lines_timed):
    lines = read_lines_timed(f"{live_server.url}/stream")

    assert [text for text, _ in lines] == ["START", "MIDDLE", "END"]
    (_, start), (_, middle), (_, end) = lines
    first_pause, second_pause = settings.stream_delays
    # Each part left the server when it was produced, not all at the end.
    assert middle - start >= first_pause * 0.8
    assert end - middle >= second_pause * 0.8
    assert start < first_pause * 0.8


def test_other_clients_are_served_while_a_stream_waits(live_server, settings, read_lines_timed):
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(read_lines_timed, [f"{live_server.url}/stream"] * 20))

    slowest = max(lines[-1][1] for lines in results)
    assert all([text for text, _ in lines] == ["START", "MIDDLE", "END"] for lines in results)
    # Twenty streams at once take about as long as one: they wait side by side, not in turn.
    assert slowest < sum(settings.stream_delays) * 3
