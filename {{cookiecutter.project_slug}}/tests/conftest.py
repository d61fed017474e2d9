"""Fixtures: an in-process app for WebTest, and real servers in their own processes.

The helpers here serve every test folder: `free_port`, `LiveServer` (any server command, waited
for until it listens), `http_get` and `process_env`.
"""

import http.client
{%- if cookiecutter.use_chat %}
import json
{%- endif %}
import os
import re
{%- if cookiecutter.broker == "redis" %}
import shutil
{%- endif %}
import signal
import socket
import subprocess
import sys
import time
{%- if cookiecutter.use_chat %}
import urllib.error
import urllib.request
{%- endif %}
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import webtest

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.settings import Settings

# Short pauses keep the suite quick; the code paths are the ones the defaults take.
FAST = Settings(
    host="127.0.0.1",
    port=0,
    shutdown_timeout=2.0,
{%- if cookiecutter.use_stream or cookiecutter.use_sse %}
    stream_delays=(0.3, 0.5),
{%- endif %}
{%- if cookiecutter.use_fetch %}
    fetch_chunks=3,
    fetch_interval=0.25,
{%- endif %}
{%- if cookiecutter.use_chat %}
    chat_poll_timeout=1.0,
    # Tests post much and fast from one address; the rate limit's own tests set it low.
    chat_post_rate=1000.0,
    chat_post_burst=1000,
{%- endif %}
)
SRC = Path({{ cookiecutter.package_name }}.__file__).resolve().parent.parent


@pytest.fixture
def settings() -> Settings:
    return FAST


@pytest.fixture
def app(settings: Settings) -> webtest.TestApp:
    """The WSGI app in this process: quick checks of status, headers and bodies."""
    return webtest.TestApp(create_app(settings))


def free_port() -> int:
    """A loopback port free right now, for a server that must listen on a known one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET over a fresh connection; returns status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while data := sock.recv(65536):
            response += data
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def process_env(**variables: str) -> dict[str, str]:
    """Environment for a child Python that imports the same code as the tests, installed or not."""
    env = {**os.environ, **variables}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


class LiveServer:
    """A server command in a subprocess, waited for until its log says where it listens.

    A separate process gets monkey-patched properly, which pytest's own process cannot be.
    The command must log a line with `http://<host>:<port>` once it listens.
    """

    LISTENING = re.compile(r"(?:listening on|Listening at:) https?://[^:]+:(\d+)")

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, cwd=None) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port = 0

    @classmethod
    def app(cls, settings: Settings, log_path: Path) -> "LiveServer":
        """`python -m {{ cookiecutter.package_name }}` with these settings."""
        command = [sys.executable, "-m", "{{ cookiecutter.package_name }}"]
        return cls(command, process_env(**settings.to_env()), log_path).start()

    def start(self, timeout: float = 20.0) -> "LiveServer":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (found := self.LISTENING.findall(self.log)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"{self.command} did not start:\n{self.log}")
            time.sleep(0.05)
        self.port = int(found[-1])  # the last start's, when a server is restarted
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `signum` and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def start_server(tmp_path: Path):
    """Start the app with given settings; each server is stopped at the end of the test."""
    servers: list[LiveServer] = []

    def start(settings: Settings = FAST, **changes) -> LiveServer:
        log_path = tmp_path / f"server-{len(servers)}.log"
        servers.append(LiveServer.app(replace(settings, **changes), log_path))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory):
    """One real server of the app shared by the tests that only talk to it."""
    server = LiveServer.app(FAST, tmp_path_factory.mktemp("live") / "server.log")
    yield server
    server.stop()


def _read_lines_timed(url: str, timeout: float = 20.0) -> list[tuple[str, float]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    started = time.monotonic()
    connection.request("GET", parts.path)
    response = connection.getresponse()
    assert response.status == 200, response.read()
    assert response.getheader("Transfer-Encoding") == "chunked"
    lines = [(line.decode().rstrip("\n"), time.monotonic() - started) for line in response]
    connection.close()
    return lines


@pytest.fixture
def read_lines_timed():
    """GET a URL over a real socket; return each line and the seconds it took to arrive."""
    return _read_lines_timed
{%- if cookiecutter.use_sse %}


class EventReader:
    """A Server-Sent Events client over a real socket: next() is the next event, as a dict of
    its fields ("id", "event", "data"), with "at", the seconds since the request."""

    def __init__(self, url: str, last_event_id: str | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.started = time.monotonic()
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.connection.request("GET", target, headers=headers)
        self.response = self.connection.getresponse()
        self.retry: int | None = None

    def next(self) -> dict:
        fields: dict = {}
        while line := self.response.readline():
            line = line.decode().removesuffix("\n").removesuffix("\r")
            if line.startswith(":"):
                continue  # a comment (a heartbeat)
            if line:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data" and "data" in fields:
                    value = fields["data"] + "\n" + value
                fields[name] = value
            elif "retry" in fields and "data" not in fields:
                self.retry = int(fields.pop("retry"))
            elif "data" in fields:
                return {**fields, "at": time.monotonic() - self.started}
        raise EOFError("the stream ended")

    def close(self) -> None:
        self.connection.close()
{%- endif %}
{%- if cookiecutter.use_chat %}


def http_json(method: str, url: str, body: dict | None = None) -> dict:
    """A JSON request over a real socket; returns the decoded answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def post_until_accepted(url: str, text: str, timeout: float = 15.0) -> dict:
    """POST a chat message, waiting out 429 (this address posted much just before) and 503 (the
    broker coming back); returns the stored message."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_json("POST", url, {"text": text})
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
{%- if cookiecutter.broker == "redis" %}


class RedisServer:
    """redis-server on a free loopback port, with no persistence at all: a restart empties it."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--appendonly", "no", "--save", ""]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command(b"PING").startswith(b"+PONG"):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def command(self, *words: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b" ".join(words) + b"\r\n")
            return sock.recv(1024)

    def flush(self) -> None:
        assert self.command(b"FLUSHALL").startswith(b"+OK")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A real Redis for the chat broker; tests that need one skip without redis-server."""
    if shutil.which("redis-server") is None:
        pytest.skip("the Redis broker's tests need redis-server: apt-get install redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chat_settings(redis_server: RedisServer) -> Settings:
    """Settings whose chat runs on the test Redis."""
    return replace(FAST, redis_url=redis_server.url)


@pytest.fixture(scope="session")
def chat_server(tmp_path_factory: pytest.TempPathFactory, chat_settings: Settings):
    """A real server for the chat tests."""
    server = LiveServer.app(chat_settings, tmp_path_factory.mktemp("chat") / "server.log")
    yield server
    server.stop()
{%- else %}


@pytest.fixture(scope="session")
def chat_settings() -> Settings:
    return FAST


@pytest.fixture(scope="session")
def chat_server(live_server: LiveServer) -> LiveServer:
    """A real server for the chat tests (its broker is in memory)."""
    return live_server
{%- endif %}
{%- endif %}
