"""The app as a whole: errors are short plain text, a failing route is answered alone, and the
command line refuses bad flags with a clear message."""

import logging
import subprocess
import sys

import webtest
from conftest import process_env

from {{ cookiecutter.package_name }}.app import create_app


def test_unknown_route_is_a_plain_text_404(app):
    response = app.get("/no-such-page", status=404)
    assert response.content_type == "text/plain"
    assert response.text.startswith("404 Not Found")


def test_wrong_method_is_405(app):
    app.post("/healthz", status=405)


def test_failing_route_is_logged_and_answered_alone(settings, caplog):
    app = create_app(settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    client = webtest.TestApp(app)
    with caplog.at_level(logging.ERROR):
        response = client.get("/boom", status=500)
    assert response.text == "500 Internal Server Error: internal server error\n"
    assert "GET /boom failed" in caplog.text
    assert "secret detail" in caplog.text  # in the log, not in the response
    assert client.get("/healthz").json == {"status": "ok"}


def test_bad_flag_value_exits_with_a_clear_message():
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=30,
        env=process_env(),
    )
    assert result.returncode == 2
    assert "port: 99999 is not a TCP port" in result.stderr
    assert "Traceback" not in result.stderr
