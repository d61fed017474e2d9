"""The websockets-library peer: a WebSocket echo server, the library's own asyncio API.

It serves WebSockets only (the library has no streaming HTTP responses), so it takes part in
the WebSocket scenarios. Pings every 20 s and a 1 MiB limit, like the generated server;
compression off, since the load client does not offer it.
"""

import argparse
import asyncio

from websockets.asyncio.server import serve


async def echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


async def main(args: argparse.Namespace) -> None:
    async with serve(
        echo,
        "127.0.0.1",
        args.port,
        max_size=1 << 20,
        ping_interval=20,
        compression=None,
        backlog=args.backlog,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()  # until SIGTERM ends the process


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=2048)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
