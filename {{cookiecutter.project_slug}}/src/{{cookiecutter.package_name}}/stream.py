"""GET /stream: one response sent in parts over time, the first example of Bottle's async primer."""

from collections.abc import Iterator

import bottle
import gevent

from .settings import Settings


def install(app: bottle.Bottle, settings: Settings) -> None:
    first_pause, second_pause = settings.stream_delays

    @app.get("/stream")
    def stream() -> Iterator[str]:
        # A generator body: the server sends each yielded part as one chunk as soon as it exists.
        # Headers leave with the first part, so abort() only works before the first yield.
        bottle.response.content_type = "text/plain; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        # Tells nginx not to collect the body before passing it on.
        bottle.response.set_header("X-Accel-Buffering", "no")
        yield "START\n"
        gevent.sleep(first_pause)  # stands for slow work; other connections are served meanwhile
        yield "MIDDLE\n"
        gevent.sleep(second_pause)
        yield "END\n"
