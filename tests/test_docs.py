"""The nginx configs a bake documents (README) and ships (deploy/nginx.conf) are valid nginx."""

import re
import subprocess

import pytest
from conftest import NGINX

pytestmark = pytest.mark.skipif(NGINX is None, reason="checks nginx configs with nginx -t: apt-get install nginx-light")

WRAPPER = """
pid {tmp}/nginx.pid;
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


def nginx_test(tmp_path, site: str) -> subprocess.CompletedProcess:
    # Tests bind nothing: `listen 80` only has to parse, and names must resolve offline.
    site = site.replace("listen 80;", "listen 127.0.0.1:8999;").replace("server_name example.com;", "")
    config = tmp_path / "nginx.conf"
    config.write_text(WRAPPER.format(tmp=tmp_path, site=site))
    return subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )


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
