"""The runtime package (src/<package>/runtime/): the same in every bake, tested once here.

Each bake runs the tests of its own features (tests/test_bake.py); the runtime's tests do not
depend on the answers, so they run against one bake only.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, combination_id, feature_combinations

RUNTIME_SOURCE = TEMPLATE / "src" / "{{cookiecutter.package_name}}" / "runtime"
VARIANTS = [
    {},
    {"use_websocket": False, "use_chat": True, "broker": "redis", "use_docker": False},
    {"project_name": "Other Service", "use_stream": False, "use_js_client": False},
]


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def bakes(cookies_session) -> list[Path]:
    results = [cookies_session.bake(extra_context=answers) for answers in VARIANTS]
    assert all(result.exit_code == 0 for result in results), [result.exception for result in results]
    return [result.project_path for result in results]


def package_dir(project: Path) -> Path:
    return next(path for path in (project / "src").iterdir() if path.is_dir())


def test_runtime_source_has_no_template_syntax():
    for name, text in files_of(RUNTIME_SOURCE).items():
        for syntax in ("{{", "{%", "{#"):
            assert syntax.encode() not in text, f"{syntax} in runtime/{name}: the runtime is the same in every bake"


def test_every_bake_has_the_same_runtime(bakes):
    runtimes = [files_of(package_dir(project) / "runtime") for project in bakes]
    assert runtimes[0], "no runtime package"
    assert all(runtime == runtimes[0] for runtime in runtimes[1:])


def test_every_bake_has_the_same_runtime_tests_but_for_the_package_name(bakes):
    def normalised(project: Path) -> dict[str, bytes]:
        name = package_dir(project).name.encode()
        return {path: text.replace(name, b"PACKAGE") for path, text in files_of(project / "tests/runtime").items()}

    suites = [normalised(project) for project in bakes]
    assert all(suite == suites[0] for suite in suites[1:])


def test_runtime_tests_pass(bakes):
    project = bakes[0]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "tests/runtime"]
    tests = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and " failed" not in tests.stdout


def test_the_bake_matrix_ids_are_unique():
    ids = [combination_id(context) for context in feature_combinations()]
    assert len(ids) == len(set(ids))
