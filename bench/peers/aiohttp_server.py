"""The aiohttp peer: the same endpoints as the generated project, the way aiohttp users write them.

GET /websocket echoes, GET /stream sends START, MIDDLE and END with pauses between, GET /fetch
streams chunks that a worker task puts into a bounded asyncio.Queue, and GET /chat/<room>/ws
sends each posted message to every socket in the room. Default event loop, no
access log (the generated server runs at log level WARNING in the benchmark too).
"""

import argparse
import asyncio
import json
import time

from aiohttp import WSMsgType, web

HEADERS = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def make_app(args: argparse.Namespace) -> web.Application:
    first_pause, second_pause = args.delays

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        # Pings every 20 s and a 1 MiB message limit, as the generated server does by default.
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers=HEADERS)
        await response.prepare(request)
        await response.write(b"START\n")
        await asyncio.sleep(first_pause)
        await response.write(b"MIDDLE\n")
        await asyncio.sleep(second_pause)
        await response.write(b"END\n")
        await response.write_eof()
        return response

    async def fetch(request: web.Request) -> web.StreamResponse:
        queue: asyncio.Queue = asyncio.Queue(args.fetch_queue_size)

        async def worker() -> None:
            for number in range(1, args.fetch_chunks + 1):
                if number > 1:
                    await asyncio.sleep(args.fetch_interval)
                await queue.put(f"chunk {number} of {args.fetch_chunks}\n".encode())
            await queue.put(None)

        task = asyncio.create_task(worker())
        try:
            response = web.StreamResponse(headers=HEADERS)
            await response.prepare(request)
            while (chunk := await queue.get()) is not None:
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            task.cancel()  # the client may have gone: stop producing

    rooms: dict[str, set] = {}
    last_ids: dict[str, int] = {}

    async def chat(request: web.Request) -> web.WebSocketResponse:
        # The chat scenario: every text message {"text": ...} goes to every socket in the room.
        room = request.match_info["room"]
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        members = rooms.setdefault(room, set())
        members.add(ws)
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                last_ids[room] = last_ids.get(room, 0) + 1
                text = json.loads(message.data)["text"]
                data = json.dumps({"id": last_ids[room], "room": room, "text": text, "ts": time.time()})
                for member in list(members):
                    await member.send_str(data)
        finally:
            members.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/websocket", websocket)
    app.router.add_get("/chat/{room}/ws", chat)
    app.router.add_get("/stream", stream)
    app.router.add_get("/fetch", fetch)
    return app


async def main(args: argparse.Namespace) -> None:
    runner = web.AppRunner(make_app(args), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=args.backlog)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()  # until SIGTERM ends the process


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--delays", type=lambda s: tuple(map(float, s.split(","))), default=(1, 1))
    parser.add_argument("--fetch-chunks", type=int, default=3)
    parser.add_argument("--fetch-interval", type=float, default=1.0)
    parser.add_argument("--fetch-queue-size", type=int, default=16)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
