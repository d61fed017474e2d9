"""The Docker files: no Docker engine needed, the commands they run are run here instead."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
{%- if cookiecutter.use_sse %}
import urllib.request
{%- endif %}
from pathlib import Path

import pytest
import yaml
from conftest import free_port, process_env

PROJECT = Path(__file__).resolve().parent.parent
DOCKERFILE = (PROJECT / "Dockerfile").read_text()


def instruction(name: str) -> list[str]:
    """The exec-form (JSON) command of the Dockerfile's `name` instruction."""
    joined = DOCKERFILE.replace("\\\n", " ")
    line = next(line for line in joined.splitlines() if line.startswith(name + " "))
    return json.loads(line[line.index("[") :])


def image_environment() -> dict[str, str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    pairs = " ".join(line[4:] for line in joined.splitlines() if line.startswith("ENV "))
    return dict(re.findall(r"(\w+)=(\S+)", pairs))


def test_image_runs_as_non_root_with_a_healthcheck():
    assert re.search(r"^USER (?!root|0\b)\S+", DOCKERFILE, re.MULTILINE)
    assert "HEALTHCHECK" in DOCKERFILE
    assert instruction("CMD") == ["gunicorn", "-c", "gunicorn.conf.py"]


def test_the_image_command_serves_and_its_healthcheck_passes(tmp_path):
    pytest.importorskip("gunicorn", reason="needs gunicorn: pip install 'gunicorn[gevent]'")
    port = str(free_port())
    env = {**process_env(), **image_environment()}
    # As in the image, except that tests listen on loopback only.
    env["{{ cookiecutter.package_name | upper }}_HOST"] = "127.0.0.1"
    env["{{ cookiecutter.package_name | upper }}_PORT"] = port
{%- if cookiecutter.use_sse %}
    env["{{ cookiecutter.package_name | upper }}_STREAM_DELAYS"] = "0.2,0.2"
{%- endif %}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log = tmp_path / "image.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(instruction("CMD"), cwd=PROJECT, env=env, stdout=out, stderr=out)
    try:
        # The image's healthcheck, with this interpreter in place of the image's `python`.
        healthcheck = [sys.executable, *instruction("HEALTHCHECK")[1:]]
        deadline = time.monotonic() + 20
        while True:
            check = subprocess.run(healthcheck, env=env, capture_output=True, timeout=10)
            if check.returncode == 0:
                break
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
{%- if cookiecutter.use_sse %}
        # Event streams pass through the image's server (gunicorn's gevent workers) whole.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/events", timeout=10) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            assert response.read().endswith(b"id: 3\ndata: END\n\n")
{%- endif %}
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0, log.read_text()


def test_compose_file_builds_the_app():
    compose = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
    app = compose["services"]["app"]
    assert app["build"] == "."
    assert app["environment"]["{{ cookiecutter.package_name | upper }}_HOST"] == "0.0.0.0"
{%- if cookiecutter.broker == "redis" %}
    assert app["deploy"]["replicas"] > 1
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert "--appendonly" in compose["services"]["redis"]["command"]
    nginx = compose["services"]["nginx"]
    assert nginx["volumes"] == ["./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    assert (PROJECT / "deploy/nginx.conf").exists()
{%- else %}
    assert app["ports"] == ["{{ cookiecutter.port }}:{{ cookiecutter.port }}"]
{%- endif %}


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="lints with hadolint if installed")
def test_dockerfile_passes_hadolint():
    result = subprocess.run(["hadolint", "Dockerfile"], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
