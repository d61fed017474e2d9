"""The sse-starlette peer: chat rooms over Server-Sent Events, the way sse-starlette users write them.

GET /chat/<room>/events is an EventSourceResponse over an async generator that waits on its own
asyncio.Queue: a `retry:` line first (as the generated server sends), then an `id:` and `data:`
event per message, and the library's ping comment every 15 s while idle. POST /chat/<room> with
{"text": ...} gives the message the room's next id, puts it into every queue of the room and
answers 201 with it as JSON. uvicorn, no access log.
"""

import argparse
import asyncio
import json
import time

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RETRY_MS = 3000  # the reconnection delay an EventSource is told first
PING_SECONDS = 15  # heartbeat comment on idle streams, as the generated server does


def make_app() -> Starlette:
    rooms: dict[str, set[asyncio.Queue]] = {}
    last_ids: dict[str, int] = {}

    async def events(request: Request) -> EventSourceResponse:
        room = request.path_params["room"]

        async def stream():
            queue: asyncio.Queue = asyncio.Queue()
            subscribers = rooms.setdefault(room, set())
            subscribers.add(queue)  # before the first byte goes out: a client that has it is subscribed
            try:
                yield ServerSentEvent(retry=RETRY_MS)
                while True:
                    yield await queue.get()
            finally:
                subscribers.discard(queue)

        return EventSourceResponse(stream(), ping=PING_SECONDS)

    async def post(request: Request) -> JSONResponse:
        room = request.path_params["room"]
        try:
            text = (await request.json())["text"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send JSON such as {"text": "hello"}'}, status_code=400)
        last_ids[room] = last_ids.get(room, 0) + 1
        message = {"id": last_ids[room], "room": room, "text": text, "ts": time.time()}
        # One event for the whole room, its JSON made once (the generated server does the same).
        event = ServerSentEvent(json.dumps(message), id=str(message["id"]))
        for queue in rooms.get(room, ()):
            queue.put_nowait(event)
        return JSONResponse(message, status_code=201)

    return Starlette(
        routes=[
            Route("/chat/{room}/events", events),
            Route("/chat/{room}", post, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args()
    # h11 and the asyncio loop: what `pip install sse-starlette uvicorn` gives, named so that a
    # uvloop or httptools that lands in the shared venv cannot change the peer between runs.
    uvicorn.run(
        make_app(),
        host="127.0.0.1",
        port=args.port,
        backlog=args.backlog,
        loop="asyncio",
        http="h11",
        access_log=False,
        log_level="warning",
    )  # SIGTERM ends the process


if __name__ == "__main__":
    main()
