"""GET /fetch: long polling without a thread per client, the primer's queue example.

The route returns a queue as the response body. A worker, running in its own greenlet, puts
chunks into it as they become ready and ends the body with StopIteration. The server sends
each chunk the moment it is taken from the queue, and the connection costs a greenlet, not
a thread, while it waits.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import Protocol

import bottle
import gevent
from gevent.queue import Queue

from .settings import Settings

log = logging.getLogger(__name__)


class Worker(Protocol):
    """What the route needs from a worker: callbacks for data and the end, start and stop."""

    def on_data(self, callback: Callable[[str], None]) -> None: ...
    def on_finish(self, callback: Callable[[], None]) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class DemoWorker:
    """Stands in for real asynchronous work (an upstream API, a job queue, a database listener).

    Replace it with your own through `install(..., make_worker=...)`: anything with the
    methods of `Worker` fits.
    """

    def __init__(self, chunks: int, interval: float) -> None:
        self.chunks = chunks
        self.interval = interval
        self._on_data: Callable[[str], None] = lambda chunk: None
        self._on_finish: Callable[[], None] = lambda: None
        self._greenlet: gevent.Greenlet | None = None

    def on_data(self, callback: Callable[[str], None]) -> None:
        self._on_data = callback

    def on_finish(self, callback: Callable[[], None]) -> None:
        self._on_finish = callback

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def _run(self) -> None:
        try:
            for number in range(1, self.chunks + 1):
                if number > 1:
                    gevent.sleep(self.interval)
                self._on_data(self.produce(number))
        except Exception:
            # Log with context and end the response: the client sees a short body, not a hang.
            log.exception("fetch worker failed after %d of %d chunks", number - 1, self.chunks)
        self._on_finish()

    def produce(self, number: int) -> str:
        """One chunk of the demo's output; real work goes here."""
        return f"chunk {number} of {self.chunks}\n"


class QueueBody(Queue):
    """A queue used as a response body, which stops its worker when the response is over.

    The server calls close() once the body is done or the client has gone away (a failed
    write), so a worker never keeps producing for nobody. The queue is bounded: a client
    that reads slowly makes the worker wait in put() instead of growing memory.
    """

    def __init__(self, worker: Worker, maxsize: int) -> None:
        super().__init__(maxsize)
        self.worker = worker

    def close(self) -> None:
        self.worker.stop()


def install(
    app: bottle.Bottle,
    settings: Settings,
    make_worker: Callable[[], Worker] | None = None,
) -> None:
    if make_worker is None:
        make_worker = partial(DemoWorker, settings.fetch_chunks, settings.fetch_interval)

    @app.get("/fetch")
    def fetch() -> QueueBody:
        worker = make_worker()
        body = QueueBody(worker, maxsize=settings.fetch_queue_size)
        worker.on_data(body.put)
        # Iterating a gevent queue stops at the StopIteration marker: that ends the response.
        worker.on_finish(lambda: body.put(StopIteration))
        bottle.response.content_type = "text/plain; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")
        worker.start()
        return body
