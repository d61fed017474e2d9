"""A small app on the runtime, with one route for each kind of response the runtime serves.

serve_sample.py serves it as `python -m` serves the app, and gunicorn as `gunicorn -k
sample_app.SampleWorker sample_app:app` (from this folder); both read settings from SAMPLE_APP_*
variables. This module does not monkey-patch: whoever serves it does.
"""

import gc
import hashlib
import os

import bottle
import gevent
from gevent.queue import Queue
from greenlet import greenlet

from {{ cookiecutter.package_name }}.runtime.gunicorn import Worker
from {{ cookiecutter.package_name }}.runtime.routing import websocket_route
from {{ cookiecutter.package_name }}.runtime.settings import ServerSettings
from {{ cookiecutter.package_name }}.runtime.websocket import WebSocket, text_frame

PAUSE = float(os.environ.get("SAMPLE_APP_PAUSE", "0.3"))  # between the parts of /stream and /queue
BIG = 16 << 20  # bytes of GET /big: far more than socket buffers hold
WAITING = set()  # the requests of GET /wait not yet over
LISTENERS: set[WebSocket] = set()  # the sockets of /fanout


class SampleSettings(ServerSettings):
    env_prefix = "SAMPLE_APP_"


def create_app() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/stats")
    def stats() -> dict:
        """Greenlets and open files of this process: a leak of connections shows in both."""
        gc.collect()
        alive = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet) and not obj.dead)
        return {
            "greenlets": alive,
            "open_fds": len(os.listdir("/proc/self/fd")),
            "waiting": len(WAITING),
        }

    @app.get("/wait")
    def wait() -> str:
        """A long poll that waits for nothing but its client's departure (or 30 s)."""
        gone = bottle.request.environ["runtime.client_gone"].event()
        WAITING.add(gone)
        try:
            return "gone" if gone.wait(30) else "timed out"
        finally:
            WAITING.discard(gone)

    @app.get("/stream")
    def stream():
        yield "START\n"
        gevent.sleep(PAUSE)
        yield "MIDDLE\n"
        gevent.sleep(PAUSE)
        yield "END\n"

    @app.get("/queue")
    def queue() -> Queue:
        """A queue body filled by a worker greenlet, stopped when the response ends."""
        body = QueueBody()
        body.worker = gevent.spawn(fill, body)
        return body

    @app.get("/big")
    def big() -> bytes:
        return b"x" * BIG

    @app.post("/body")
    def body() -> dict:
        data = bottle.request.body.read()
        return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    @app.route("/smuggled", method="ANY")
    def smuggled() -> str:
        return "SMUGGLED"  # a request no test sends on purpose

    @websocket_route(app, "/echo")
    def echo(ws: WebSocket) -> None:
        while (message := ws.receive()) is not None:
            ws.send(message, binary=not isinstance(message, str))

    @websocket_route(app, "/echo/<word>")
    def echo_word(ws: WebSocket, word: str) -> None:
        ws.send(word)

    @websocket_route(app, "/fanout")
    def fanout(ws: WebSocket) -> None:
        """Each message goes to every socket here, written as a chat broadcast writes it."""
        LISTENERS.add(ws)
        try:
            ws.send("joined")
            while (message := ws.receive()) is not None:
                frame = text_frame(message)
                for listener in list(LISTENERS):
                    listener.send_frame_nowait(frame, max_backlog=64)
        finally:
            LISTENERS.discard(ws)

    @websocket_route(app, "/boom")
    def boom(ws: WebSocket) -> None:
        ws.receive()
        raise RuntimeError("secret detail")

    @websocket_route(app, "/close-after-one")
    def close_after_one(ws: WebSocket) -> None:
        """Close after the first message; anything received after that would be echoed."""
        ws.receive()
        ws.close(4000, "one is enough")
        while (message := ws.receive()) is not None:
            ws.send(f"received after close: {message}")

    return app


class QueueBody(Queue):
    worker = None

    def close(self) -> None:
        self.worker.kill(block=False)


def fill(body: QueueBody) -> None:
    for number in range(1, 4):
        body.put(f"chunk {number}\n")
        gevent.sleep(PAUSE)
    body.put(StopIteration)


app = create_app()
settings = SampleSettings.from_env()
SampleWorker = Worker.with_settings(settings)
