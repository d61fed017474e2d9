"""Shared facts about the template: its features and the combinations of answers to bake."""

import itertools
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "{{cookiecutter.project_slug}}"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
FEATURES = ("use_stream", "use_fetch", "use_websocket", "use_js_client")
ENDPOINTS = ("use_stream", "use_fetch", "use_websocket")
DEFAULTS = {"use_chat": False, "broker": "memory", "use_docker": True}

# The chat and Docker options against the endpoints they depend on: every broker with each
# transport the chat can use (long polling, WebSocket, both), with and without the page, and
# Docker off somewhere in each group.
EXTRA_COMBINATIONS = [
    {"use_stream": True, "use_fetch": True, "use_websocket": True, "use_js_client": True, "use_chat": True},
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


def feature_combinations() -> list[dict]:
    """Every combination of the endpoint and page booleans that the pre-gen hook accepts, then
    the chat and Docker options against the endpoints they depend on."""
    products = (dict(zip(FEATURES, values, strict=True)) for values in itertools.product([True, False], repeat=4))
    base = [{**c, **DEFAULTS} for c in products if any(c[name] for name in ENDPOINTS)]
    return base + [{**DEFAULTS, **extra} for extra in EXTRA_COMBINATIONS]


def combination_id(context: dict) -> str:
    """A readable test id such as 'stream+websocket+js_client+chat-redis+no-docker'."""
    parts = [name.removeprefix("use_") for name in FEATURES if context[name]]
    if context.get("use_chat"):
        parts.append(f"chat-{context['broker']}")
    if not context.get("use_docker", True):
        parts.append("no-docker")
    return "+".join(parts)


def wait_for_port(log: Path, process: subprocess.Popen, timeout: float = 20) -> int:
    """The port a baked server says it listens on in its log (it was started with port 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        assert process.poll() is None, f"server exited:\n{log.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"server did not start:\n{log.read_text()}")


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
