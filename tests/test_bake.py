"""Bake every valid combination of features and check what comes out.

Each bake must have exactly its expected files, no leftover template syntax, no trace of a
disabled feature, clean ruff, and a test suite of its own that passes.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import combination_id, expected_files, feature_combinations, module_of

# Text that only a feature's own code, tests and docs contain. The runtime (runtime_paths) is the
# same in every bake and serves WebSockets whatever the answers, so it is not searched.
FEATURE_MARKERS = {
    "use_stream": ["GET /stream", 'data-chunked="stream"', "test_stream"],
    "use_fetch": ["/fetch", "fetch_chunks", "QueueBody"],
    "use_websocket": ["GET /websocket", "websocket.js", '/websocket"'],
    "use_sse": ["GET /events", "events.js", "sse_heartbeat", "SSE_HEARTBEAT", "EventReader"],
    "use_js_client": ["static_file", "index.html"],
    "use_chat": ["/chat/", "chat_history", "chat_broker"],
    "use_docker": ["Dockerfile", "docker-compose", "hadolint"],
}
# Only the Redis broker's files mention Redis.
REDIS_MARKERS = ["chat_redis", "redis_url", "REDIS_URL", "redis-server", "redis>="]
TEMPLATE_SYNTAX = ("{{", "}}", "{%", "%}", "{#")
# GitHub Actions' own `${{ expression }}` syntax, which the workflows keep on purpose.
GITHUB_EXPRESSION = re.compile(r"\$\{\{ [^{}]+ \}\}")


def runtime_paths(project: Path) -> tuple[str, str]:
    return f"src/{module_of(project)}/runtime/", "tests/runtime/"


def project_files(project: Path) -> dict[str, str]:
    return {
        path.relative_to(project).as_posix(): path.read_text()
        for path in project.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts
    }


def run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session", params=feature_combinations(), ids=combination_id)
def baked(request, cookies_session):
    """One bake per combination, shared by the checks below."""
    result = cookies_session.bake(extra_context=request.param)
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return request.param, result.project_path


def test_bake_has_exactly_the_expected_files(baked):
    context, project = baked
    assert set(project_files(project)) == expected_files(context)


def test_bake_has_no_template_syntax_left(baked):
    _, project = baked
    for name, text in project_files(project).items():
        if name.startswith(".github/workflows/"):
            text = GITHUB_EXPRESSION.sub("", text)
        for syntax in TEMPLATE_SYNTAX:
            assert syntax not in text, f"{syntax!r} left in {name}"


def test_bake_has_no_trace_of_disabled_features(baked):
    context, project = baked
    files = project_files(project)
    absent = {feature: markers for feature, markers in FEATURE_MARKERS.items() if not context[feature]}
    if context["broker"] != "redis":
        absent["broker=redis"] = REDIS_MARKERS
    runtime = runtime_paths(project)
    for feature, markers in absent.items():
        for name, text in files.items():
            if name == ".cookiecutter.json" or name.startswith(runtime):
                continue
            for marker in markers:
                assert marker not in text, f"{feature} is off but {name} mentions {marker!r}"


def test_bake_records_its_answers(baked):
    context, project = baked
    answers = json.loads((project / ".cookiecutter.json").read_text())
    assert {name: answers[name] for name in context} == context
    assert answers["package_name"] == module_of(project)
    assert not [name for name in answers if name.startswith("_")], "only the answers: no local paths"


def test_bake_ci_workflow_runs_lint_and_tests(baked):
    _, project = baked
    jobs = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())["jobs"]
    assert "ruff check ." in [step.get("run", "") for step in jobs["lint"]["steps"]]
    assert "pytest" in [step.get("run", "") for step in jobs["test"]["steps"]]


def test_bake_passes_ruff(baked):
    _, project = baked
    lint = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], project)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_bake_passes_its_own_tests(baked):
    """The tests of its features; the runtime's own tests run once, in tests/test_runtime.py."""
    _, project = baked
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ignore=tests/runtime"], project)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
    assert " failed" not in tests.stdout and " error" not in tests.stdout
