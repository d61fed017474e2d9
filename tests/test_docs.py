"""The nginx configs a bake documents (README) and ships (deploy/nginx.conf) are valid nginx."""

import re
import socket
import subprocess
import time

import pytest
from conftest import NGINX, ServerProcess, free_port, nginx_command, running_nginx

pytestmark = pytest.mark.skipif(NGINX is None, reason="checks nginx configs with nginx -t: apt-get install nginx-light")


def nginx_test(tmp_path, site: str) -> subprocess.CompletedProcess:
    # Tests bind nothing: `listen 80` only has to parse, and names must resolve offline.
    site = site.replace("listen 80;", "listen 127.0.0.1:8999;").replace("server_name example.com;", "")
    return subprocess.run([*nginx_command(tmp_path, site), "-t"], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "context",
    [{}, {"use_websocket": False}, {"use_chat": True, "broker": "redis"}],
    ids=["default", "no-websocket", "chat-redis"],
)
def test_readme_nginx_config_is_valid(cookies, tmp_path, context):
    project = cookies.bake(extra_context=context).project_path
    readme = (project / "README.md").read_text()
    site = re.search(r"```nginx\n(.*?)```", readme, re.DOTALL).group(1)
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr
    assert "$http_host" in site and "proxy_buffering off" in site


def test_compose_nginx_config_is_valid(cookies, tmp_path):
    project = cookies.bake(extra_context={"use_chat": True, "broker": "redis"}).project_path
    # `app` is a Docker DNS name; any resolvable address checks the rest.
    site = (project / "deploy/nginx.conf").read_text().replace("server app:", "server 127.0.0.1:")
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr


def read_events(port: int, path: str, count: int) -> list[tuple[str, float]]:
    """GET an event stream through a raw socket; each `data:` line and when it arrived."""
    lines, buffer = [], b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        while len(lines) < count:
            data = sock.recv(65536)
            assert data, f"the stream ended early: {buffer!r}"
            buffer += data
            for found in re.findall(rb"data: (\w+)\n", buffer)[len(lines) :]:
                lines.append((found, time.monotonic() - started))
    return [(text.decode(), at) for text, at in lines]


def test_the_readme_nginx_config_passes_events_on_as_they_come(cookies, tmp_path):
    """The documented proxy in front of a real server: each event arrives on its own (no
    buffering), and an upgrade that is not a WebSocket is not passed on."""
    project = cookies.bake().project_path
    app = ServerProcess(project, tmp_path, env={"REALTIME_APP_STREAM_DELAYS": "0.5,0.5"}).start()
    port = free_port()
    site = re.search(r"```nginx\n(.*?)```", (project / "README.md").read_text(), re.DOTALL).group(1)
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{app.port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("server_name example.com;", "")
    try:
        with running_nginx(tmp_path, site, port):
            (start, first), (middle, second), (end, third) = read_events(port, "/events", 3)
            assert (start, middle, end) == ("START", "MIDDLE", "END")
            assert first < 0.4 and second - first >= 0.4 and third - second >= 0.4, (first, second, third)

            body = b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
            smuggle = (
                b"POST /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nConnection: upgrade\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(smuggle)
                answer = b""
                while data := sock.recv(65536):
                    answer += data
            assert answer.startswith(b"HTTP/1.1 405") and b"START" not in answer
    finally:
        app.stop()
