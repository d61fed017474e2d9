"""GET /events: the primer's stream as Server-Sent Events, which a browser reads with one line
of JavaScript (`new EventSource("events")`) and resumes by itself after a drop.

Each event has an id; a browser that reconnects sends the last one it got as Last-Event-ID,
and the stream continues after it instead of starting over. Idle streams get a heartbeat
comment, so proxies keep them open and a departed client is noticed.
"""

from collections.abc import Iterator

import bottle
import gevent

from .settings import Settings

# How long a browser waits before it reconnects, in milliseconds: sent first on every stream.
RETRY = b"retry: 3000\n\n"
HEARTBEAT = b": heartbeat\n\n"  # a comment line: browsers ignore it
PARTS = ("START", "MIDDLE", "END")


def event(data: str, event_id: str | None = None, name: str | None = None) -> bytes:
    """One event in the text/event-stream format; each line of `data` is a `data:` field."""
    fields = [f"event: {name}"] if name else []
    if event_id is not None:
        fields.append(f"id: {event_id}")
    fields += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(fields) + "\n\n").encode()


def start_event_stream() -> None:
    """The headers every event stream needs: its type, no caching, no proxy buffering."""
    bottle.response.content_type = "text/event-stream"
    bottle.response.set_header("Cache-Control", "no-cache")
    # Tells nginx not to collect the body before passing it on.
    bottle.response.set_header("X-Accel-Buffering", "no")


def sleep_with_heartbeats(seconds: float, heartbeat: float) -> Iterator[bytes]:
    """Wait `seconds`, yielding a heartbeat comment every `heartbeat` seconds of the wait."""
    while seconds > heartbeat:
        gevent.sleep(heartbeat)
        seconds -= heartbeat
        yield HEARTBEAT
    gevent.sleep(seconds)


def install(app: bottle.Bottle, settings: Settings) -> None:
    pauses = settings.stream_delays

    @app.get("/events")
    def events() -> Iterator[bytes]:
        last = bottle.request.get_header("Last-Event-ID", "").strip()
        if last not in ("", "1", "2", "3"):
            bottle.abort(400, "Last-Event-ID must be an id this stream sent: 1, 2 or 3")
        if last == "3":
            # The stream is over: 204 tells a browser to stop reconnecting.
            return bottle.HTTPResponse(status=204)
        start_event_stream()
        return stream(int(last or 0))

    def stream(done: int) -> Iterator[bytes]:
        # A generator: the server sends each event the moment it is yielded.
        yield RETRY
        for number in range(done + 1, len(PARTS) + 1):
            if number > 1:  # the pause before this part, as /stream has it
                yield from sleep_with_heartbeats(pauses[number - 2], settings.sse_heartbeat)
            yield event(PARTS[number - 1], str(number))
