"""The GitHub workflows and Dependabot configs, the template's own and every generated project's.

Each parses, pins its actions by commit, reads the repository only, and passes `zizmor --offline`
with no finding. A generated project lints once and tests on every Python from its
`python_version` up to the newest that gevent publishes wheels for.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

TEMPLATE_WORKFLOW = ROOT / "{{cookiecutter.project_slug}}" / ".github/workflows/ci.yml"
# Written once, in the generated workflow's template.
NEWEST_PYTHON = re.search(r'newest_python = "(3\.\d+)"', TEMPLATE_WORKFLOW.read_text()).group(1)
NEWEST_MINOR = int(NEWEST_PYTHON.split(".")[1])
ZIZMOR = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
needs_zizmor = pytest.mark.skipif(ZIZMOR is None, reason="audits workflows with zizmor: pip install zizmor")

PINNED_USES = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
GITHUB_EXPRESSION = re.compile(r"\$\{\{ [^{}]+ \}\}")
JINJA_SYNTAX = ("{{", "}}", "{%", "%}", "{#", "#}")

VARIANTS = {
    "default": {},
    "python-3.10": {"python_version": "3.10"},
    "python-3.12": {"python_version": "3.12"},
    "chat-redis": {"use_chat": True, "broker": "redis"},
    "newest-python": {"python_version": NEWEST_PYTHON},
    "beyond-newest": {"python_version": f"3.{NEWEST_MINOR + 1}"},
}


def supported_pythons(lowest: str) -> list[str]:
    first = int(lowest.split(".")[1])
    return [f"3.{minor}" for minor in range(first, max(first, NEWEST_MINOR) + 1)]


def zizmor(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ZIZMOR, "--offline", str(path)], capture_output=True, text=True, timeout=60)


def pins(workflow_text: str) -> set[tuple[str, str, str]]:
    """Every (action, commit, version) a workflow uses; each must be pinned by commit with a `# vX.Y.Z` comment."""
    found = set()
    for line in workflow_text.splitlines():
        if "uses:" in line:
            match = PINNED_USES.match(line)
            assert match, f"not pinned by commit with a version comment: {line.strip()}"
            found.add(match.groups())
    return found


def assert_hardened(workflow: dict) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def run_commands(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def python_of(job: dict) -> str:
    """The Python version a job asks actions/setup-python for."""
    (version,) = [step["with"]["python-version"] for step in job["steps"] if "setup-python@" in step.get("uses", "")]
    return version


@pytest.fixture(scope="module", params=VARIANTS.values(), ids=VARIANTS.keys())
def baked(request, cookies_session):
    result = cookies_session.bake(extra_context=request.param)
    assert result.exception is None, result.exception
    return json.loads((result.project_path / ".cookiecutter.json").read_text()), result.project_path


def test_generated_workflow_is_rendered_and_hardened(baked):
    _, project = baked
    text = (project / ".github/workflows/ci.yml").read_text()
    leftover = GITHUB_EXPRESSION.sub("", text)
    assert not [syntax for syntax in JINJA_SYNTAX if syntax in leftover], leftover
    assert_hardened(yaml.safe_load(text))
    assert {action for action, _, _ in pins(text)} == {"actions/checkout", "actions/setup-python"}


def test_generated_workflow_lints_once_and_tests_on_every_supported_python(baked):
    answers, project = baked
    jobs = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())["jobs"]
    assert set(jobs) == {"lint", "test"}
    assert jobs["test"]["strategy"]["matrix"] == {"python-version": supported_pythons(answers["python_version"])}
    assert "strategy" not in jobs["lint"]
    assert python_of(jobs["lint"]) == answers["python_version"]
    assert python_of(jobs["test"]) == "${{ matrix.python-version }}"
    assert "ruff check ." in run_commands(jobs["lint"]) and "pytest" not in run_commands(jobs["lint"])
    assert "pytest" in run_commands(jobs["test"]) and not any("ruff" in run for run in run_commands(jobs["test"]))
    assert ("redis-server" in "".join(run_commands(jobs["test"]))) == (answers["broker"] == "redis")


def test_generated_dependabot_updates_actions_and_pip(baked):
    _, project = baked
    config = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    assert config["version"] == 2
    assert {(update["package-ecosystem"], update["directory"]) for update in config["updates"]} == {
        ("github-actions", "/"),
        ("pip", "/"),
    }
    assert all(update["cooldown"]["default-days"] >= 7 for update in config["updates"])


@needs_zizmor
def test_generated_github_dir_passes_zizmor(baked):
    _, project = baked
    audit = zizmor(project / ".github")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings" in audit.stdout, audit.stdout


@needs_zizmor
def test_template_github_dir_passes_zizmor():
    audit = zizmor(ROOT / ".github")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings" in audit.stdout, audit.stdout


def test_template_workflow_is_hardened():
    assert_hardened(yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text()))


def test_generated_workflow_template_pins_the_same_actions_and_parses_unrendered():
    """The template repository's Dependabot reads the unrendered template, so it must be YAML too;
    one grouped pull request then moves both workflows' pins together."""
    yaml.safe_load(TEMPLATE_WORKFLOW.read_text())
    assert pins(TEMPLATE_WORKFLOW.read_text()) == pins((ROOT / ".github/workflows/ci.yml").read_text())


def test_template_dependabot_covers_both_workflows_and_the_python_requirements():
    config = yaml.safe_load((ROOT / ".github/dependabot.yml").read_text())
    assert config["version"] == 2
    directories = {update["package-ecosystem"]: update["directories"] for update in config["updates"]}
    assert set(directories) == {"github-actions", "pip"}
    assert directories["github-actions"] == ["/", "/" + TEMPLATE_WORKFLOW.parent.relative_to(ROOT).as_posix()]
    for directory in directories["pip"]:
        assert list((ROOT / directory.lstrip("/")).glob("requirements*.txt")), directory
    assert all(update["cooldown"]["default-days"] >= 7 for update in config["updates"])
