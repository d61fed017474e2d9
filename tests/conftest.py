"""Shared facts about the template (its features, the combinations of answers to bake) and the
helpers every test module uses to run what it bakes: free_port, ServerProcess, RedisProcess."""

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "{{cookiecutter.project_slug}}"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
FEATURES = ("use_stream", "use_fetch", "use_websocket", "use_sse", "use_js_client")
ENDPOINTS = ("use_stream", "use_fetch", "use_websocket", "use_sse")
DEFAULTS = {"use_chat": False, "broker": "memory", "use_docker": True}

# The chat and Docker options against the endpoints they depend on: every broker with each
# transport the chat can use (long polling, WebSocket, both), with and without the page, and
# Docker off somewhere in each group.
EXTRA_COMBINATIONS = [
    {"use_stream": True, "use_fetch": True, "use_websocket": True, "use_js_client": True, "use_chat": True},
    # The chat with events as its only way to reach clients (posts are plain HTTP).
    {"use_stream": False, "use_fetch": False, "use_websocket": False, "use_js_client": True, "use_chat": True},
    {
        "use_stream": False,
        "use_fetch": False,
        "use_websocket": False,
        "use_js_client": False,
        "use_chat": True,
        "broker": "redis",
        "use_docker": False,
    },
    {
        "use_stream": False,
        "use_fetch": True,
        "use_websocket": False,
        "use_js_client": False,
        "use_chat": True,
        "use_docker": False,
    },
    {"use_stream": False, "use_fetch": False, "use_websocket": True, "use_js_client": True, "use_chat": True},
    {
        "use_stream": True,
        "use_fetch": True,
        "use_websocket": True,
        "use_js_client": True,
        "use_chat": True,
        "broker": "redis",
    },
    {
        "use_stream": False,
        "use_fetch": True,
        "use_websocket": False,
        "use_js_client": True,
        "use_chat": True,
        "broker": "redis",
        "use_docker": False,
    },
    {
        "use_stream": False,
        "use_fetch": False,
        "use_websocket": True,
        "use_js_client": False,
        "use_chat": True,
        "broker": "redis",
    },
    {"use_stream": True, "use_fetch": False, "use_websocket": False, "use_js_client": True, "use_docker": False},
]
# A project name with what each kind of file must escape: quotes, an apostrophe, an accent,
# markup, an ampersand, an emoji, a backslash and a shell variable.
ODD_NAME = "O'Brien's \"Café\" <Chat> & Co. 🚀 \\ $HOME"
EXTRA_COMBINATIONS.append(
    {
        "use_stream": True,
        "use_fetch": True,
        "use_websocket": True,
        "use_js_client": True,
        "use_chat": True,
        "project_name": ODD_NAME,
    }
)


def feature_combinations() -> list[dict]:
    """Every combination of the endpoint and page booleans that the pre-gen hook accepts, then
    the chat and Docker options against the endpoints they depend on, each with and without
    events (use_sse) where the hook accepts it."""
    values = itertools.product([True, False], repeat=len(FEATURES))
    products = (dict(zip(FEATURES, combination, strict=True)) for combination in values)
    base = [{**c, **DEFAULTS} for c in products if any(c[name] for name in ENDPOINTS)]
    extras = [
        {**DEFAULTS, **extra, "use_sse": sse}
        for extra in EXTRA_COMBINATIONS
        for sse in ([True] if "project_name" in extra else [True, False])
        if sse or extra["use_fetch"] or extra["use_websocket"] or extra["use_stream"]
    ]
    return base + extras


def combination_id(context: dict) -> str:
    """A readable test id such as 'stream+websocket+js_client+chat-redis+no-docker'."""
    parts = [name.removeprefix("use_") for name in FEATURES if context[name]]
    if context.get("use_chat"):
        parts.append(f"chat-{context['broker']}")
    if not context.get("use_docker", True):
        parts.append("no-docker")
    if "project_name" in context:
        parts.append("odd-name")
    return "+".join(parts)


def free_port() -> int:
    """A loopback port free right now, for a server that must listen on a known one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_listener(port: int, what: str, process: subprocess.Popen | None = None, timeout: float = 10) -> None:
    """Wait until something accepts connections on `port`; fail if `process` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None:
            assert process.poll() is None, f"{what} exited: {process.stderr.read().decode() if process.stderr else ''}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.05)


# nginx's main config around a site (maps and server blocks), with every path it writes kept
# under the test's own folder, so it runs without root and leaves nothing behind.
NGINX_MAIN = """{head}pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{site}
}}
"""


def nginx_command(tmp_path: Path, site: str, foreground: bool = False) -> list[str]:
    """Write nginx.conf for `site` into tmp_path; the command line that runs nginx with it
    (add -t to only check it)."""
    head = "daemon off;\nmaster_process off;\n" if foreground else ""
    config = tmp_path / "nginx.conf"
    config.write_text(NGINX_MAIN.format(head=head, tmp=tmp_path, site=site))
    return [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config)]


@contextmanager
def running_nginx(tmp_path: Path, site: str, port: int) -> Iterator[subprocess.Popen]:
    """nginx serving `site`, which listens on `port`, until the block ends."""
    command = nginx_command(tmp_path, site, foreground=True)
    nginx = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_listener(port, "nginx", nginx)
        yield nginx
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def module_of(project: Path) -> str:
    """The import name of a baked project's package."""
    return next(path.parent.name for path in (project / "src").glob("*/__main__.py"))


class ServerProcess:
    """A baked project's server, started on a given port or any free one, and found where its
    log says it listens: `python -m <package>` from the project's src/, or another command
    (an installed console script, say) run in `cwd`."""

    def __init__(
        self, project: Path, log_dir: Path, port: int = 0, env=None, command=None, cwd: Path | None = None
    ) -> None:
        self.project = project
        self.log_dir = log_dir
        self.cwd = cwd or project
        self.env = {**os.environ, **(env or {})}
        if command is None:
            self.env["PYTHONPATH"] = str(project / "src")
            command = [sys.executable, "-m", module_of(project), "--port", str(port)]
        self.command = command
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, timeout: float = 20) -> "ServerProcess":
        self.starts += 1
        self.log_path = self.log_dir / f"server-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (found := re.search(r"(?:listening on|Listening at:) http://127\.0\.0\.1:(\d+)", self.log)):
            assert self.process.poll() is None, f"server exited:\n{self.log}"
            assert time.monotonic() < deadline, f"server did not start:\n{self.log}"
            time.sleep(0.05)
        self.port = int(found.group(1))
        return self

    def stop(self) -> int:
        """SIGTERM, as a deploy would send; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"server ignored SIGTERM:\n{self.log}") from None


REDIS = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")


class RedisProcess:
    """redis-server on a free loopback port, with no persistence: a restart empties it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisProcess":
        command = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_listener(self.port, "redis-server", self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def answers(**changes) -> dict:
    """The full cookiecutter context of a bake: the default answers with these changes."""
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(ROOT / "cookiecutter.json", extra_context=changes)
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    return context


def render_hook(name: str, context: dict) -> str:
    """The source of hooks/<name> as cookiecutter renders it for `context`."""
    from cookiecutter.environment import StrictEnvironment

    source = (ROOT / "hooks" / name).read_text()
    return StrictEnvironment(context=context, keep_trailing_newline=True).from_string(source).render(**context)


def expected_files(changes: dict) -> set[str]:
    """The files a bake with these answers must have: every file of the template, less those of
    the features it leaves out, as the post-gen hook's FEATURE_PATHS lists them."""
    hook: dict = {}
    exec(render_hook("post_gen_project.py", answers(**changes)), hook)  # defines, runs nothing
    package = hook["PACKAGE"]
    removed = [
        path.format(package=package)
        for feature, paths in hook["FEATURE_PATHS"].items()
        if not hook["SELECTED"][feature]
        for path in paths
    ]
    files = {
        path.relative_to(TEMPLATE).as_posix().replace("{{cookiecutter.package_name}}", package)
        for path in TEMPLATE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    return {name for name in files if not any(name == gone or name.startswith(gone + "/") for gone in removed)}
