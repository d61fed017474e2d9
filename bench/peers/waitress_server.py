"""The threaded peer: waitress with its defaults (4 worker threads), the same /stream and /fetch.

A thread is held for the whole of each response, so at most `threads` run at once and the
rest wait their turn: this is what the greenlet per connection avoids.
"""

import argparse
import logging
import queue
import threading
import time

from waitress.server import create_server

HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]


def make_app(args: argparse.Namespace):
    first_pause, second_pause = args.delays

    def stream():
        yield b"START\n"
        time.sleep(first_pause)
        yield b"MIDDLE\n"
        time.sleep(second_pause)
        yield b"END\n"

    def fetch():
        chunks: queue.Queue = queue.Queue(args.fetch_queue_size)
        stopped = threading.Event()

        def worker() -> None:
            for number in range(1, args.fetch_chunks + 1):
                if number > 1 and stopped.wait(args.fetch_interval):
                    return
                chunks.put(f"chunk {number} of {args.fetch_chunks}\n".encode())
            chunks.put(None)

        threading.Thread(target=worker, daemon=True).start()
        try:
            while (chunk := chunks.get()) is not None:
                yield chunk
        finally:
            stopped.set()

    routes = {"/stream": stream, "/fetch": fetch}

    def app(environ, start_response):
        route = routes.get(environ["PATH_INFO"])
        if route is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        start_response("200 OK", HEADERS)
        return route()

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--delays", type=lambda s: tuple(map(float, s.split(","))), default=(1, 1))
    parser.add_argument("--fetch-chunks", type=int, default=3)
    parser.add_argument("--fetch-interval", type=float, default=1.0)
    parser.add_argument("--fetch-queue-size", type=int, default=16)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Defaults otherwise: 4 threads, 100 connections served at once, the rest in the backlog.
    server = create_server(make_app(args), host="127.0.0.1", port=args.port, backlog=args.backlog)
    print(f"listening on http://127.0.0.1:{server.effective_port}", flush=True)
    server.run()  # SIGTERM ends the process


if __name__ == "__main__":
    main()
