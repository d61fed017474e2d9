"""The generated README's own steps: `pip install -e '.[test]'`, then the console script serves."""

import subprocess
import sys
import sysconfig
import urllib.request
import zipfile

from conftest import ServerProcess


def test_pip_install_then_console_script_serves(tmp_path, cookies):
    project = cookies.bake().project_path
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # Let the new venv see this run's packages, so pip finds the dependencies already there
    # and installs nothing from the network but the build backend.
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "shared-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    install = subprocess.run(
        [str(venv / "bin/pip"), "install", "-e", ".[test]"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    # The console script, run from elsewhere: it finds the package through the install alone.
    command = [str(venv / "bin/realtime-app"), "--port", "0"]
    env = {"REALTIME_APP_STREAM_DELAYS": "0.1,0.1"}
    server = ServerProcess(project, tmp_path, env=env, command=command, cwd=tmp_path).start()
    try:
        with urllib.request.urlopen(f"{server.url}stream", timeout=10) as response:
            assert response.read() == b"START\nMIDDLE\nEND\n"
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert b"<!doctype html>" in response.read()
    finally:
        assert server.stop() == 0, server.log


def test_wheel_carries_the_static_files(tmp_path, cookies):
    project = cookies.bake().project_path
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    for asset in ["index.html", "style.css", "log.js", "chunks.js", "websocket.js"]:
        assert f"realtime_app/static/{asset}" in names
