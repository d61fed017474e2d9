"""Template updates with cruft: a generated project follows the template through `cruft update`.

Each test copies the template as it is in the working tree (tracked and untracked-but-not-ignored
files) into a fresh git repository, then drives the `cruft` command line against that local path:
no network, no global git or cookiecutter configuration read or written (HOME is a temporary
folder). What they show:

- `cruft create` is reproducible: two projects generated from one commit are byte-identical, and
  `cruft diff --exit-code` is clean right after creation. A timestamp or any other
  non-reproducible output in a generated file would turn up as a conflict in every update.
- A template commit that changes the runtime and a selected feature reaches the project through
  `cruft update --skip-apply-ask` with no conflict and no `.rej` file, after which `cruft check`
  and `cruft diff --exit-code` are clean and `.cruft.json` records the new commit.
- An edit the user made to their own app survives such an update.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# Template-relative paths of the files a template commit changes; if one moves, the template
# fixture fails and names it here. RUNTIME_FILE belongs to the runtime package, the server
# underneath the app (the same in every bake); FEATURE_FILE belongs to FEATURE, which the test
# project is generated with.
RUNTIME_FILE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}/runtime/server.py"
FEATURE_FILE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}/stream.py"
FEATURE = "use_stream"
# The project's own code, which the user edits (the update must keep the edit).
APP_FILE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}/app.py"

RUNTIME_LINE = "# Template update check: a change to the runtime.\n"
FEATURE_LINE = "# Template update check: a change to a feature.\n"
USER_LINE = "# A change the project's owner made.\n"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="cruft needs git: install git to run these tests")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment without any user's git or cookiecutter configuration, and with a git identity."""
    home = tmp_path / "home"
    home.mkdir()
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "COOKIECUTTER_"))}
    return {
        **clean,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Template Test",
        "GIT_AUTHOR_EMAIL": "template-test@example.com",
        "GIT_COMMITTER_NAME": "Template Test",
        "GIT_COMMITTER_EMAIL": "template-test@example.com",
    }


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = run(["git", *args], cwd, env)
    assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def cruft(cwd: Path, env: dict[str, str], *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    """Run the cruft command line (the one installed beside this Python) and check its exit code."""
    result = run([sys.executable, "-m", "cruft", *args], cwd, env)
    assert result.returncode == expect, (
        f"cruft {' '.join(args)} exited {result.returncode}, expected {expect}:\n{result.stdout}{result.stderr}"
    )
    return result


def commit_all(repo: Path, env: dict[str, str], message: str) -> str:
    git(repo, env, "add", "--all")
    git(repo, env, "commit", "--quiet", "--no-verify", "--message", message)
    return git(repo, env, "rev-parse", "HEAD").strip()


@pytest.fixture
def template(tmp_path: Path, env: dict[str, str]) -> Path:
    """A git repository holding the template's working tree in one commit."""
    repo = tmp_path / "template"
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT, dict(os.environ))
    assert listed.returncode == 0, f"cannot list the template's files (is {ROOT} a git checkout?): {listed.stderr}"
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if not (source.is_file() or source.is_symlink()):  # deleted in the working tree
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, repo / name, follow_symlinks=False)
    for path in (RUNTIME_FILE, FEATURE_FILE, APP_FILE):
        assert (repo / path).is_file(), (
            f"{path} is not in the template: it moved or was renamed, so update the constant that names "
            "it at the top of tests/test_cruft.py"
        )
    git(repo, env, "init", "--quiet", "--initial-branch", "main")
    commit_all(repo, env, "Template")
    return repo


def create(template: Path, output: Path, env: dict[str, str]) -> Path:
    """`cruft create` with the default answers and FEATURE on; the generated project's folder."""
    output.mkdir()
    extra = json.dumps({FEATURE: True})
    cruft(output, env, "create", str(template), "--no-input", "--output-dir", str(output), "--extra-context", extra)
    (project,) = output.iterdir()
    return project


def in_project(project: Path, template_path: str) -> Path:
    """Where a template path lands in the generated project."""
    answers = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    first, *rest = Path(template_path).parts
    assert first == "{{cookiecutter.project_slug}}", template_path
    rendered = [re.sub(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}", lambda m: str(answers[m[1]]), part) for part in rest]
    return project.joinpath(*rendered)


def append(path: Path, line: str) -> None:
    text = path.read_text()
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + line)


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root (outside .git) with its mode and bytes."""
    return {
        path.relative_to(root).as_posix(): (path.stat().st_mode, path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def assert_no_conflicts(project: Path, env: dict[str, str]) -> None:
    rejects = sorted(path.relative_to(project).as_posix() for path in project.rglob("*.rej"))
    assert not rejects, f"the update left rejected hunks: {rejects}"
    assert not git(project, env, "ls-files", "--unmerged"), "the update left unmerged files"
    marked = [
        name for name, (_, data) in tree(project).items() if re.search(rb"^(<<<<<<<|>>>>>>>)( |$)", data, re.MULTILINE)
    ]
    assert not marked, f"conflict markers in {marked}"


def test_create_is_reproducible(tmp_path: Path, template: Path, env: dict[str, str]) -> None:
    first = create(template, tmp_path / "first", env)
    second = create(template, tmp_path / "second", env)
    first_tree, second_tree = tree(first), tree(second)
    assert first_tree.keys() == second_tree.keys()
    differing = [name for name in first_tree if first_tree[name] != second_tree[name]]
    assert not differing, f"two projects generated from one commit differ in {differing}"

    # .cruft.json is cruft's record (template, commit, answers) and drives check/diff/update;
    # .cookiecutter.json stays for plain cookiecutter users, who get no .cruft.json.
    cruft_state = json.loads((first / ".cruft.json").read_text())
    answers = json.loads((first / ".cookiecutter.json").read_text())
    assert cruft_state["commit"] == git(template, env, "rev-parse", "HEAD").strip()
    assert cruft_state["template"] == str(template)
    assert answers[FEATURE] is True
    recorded = cruft_state["context"]["cookiecutter"]
    assert {key: value for key, value in answers.items() if not key.startswith("_")} == {
        key: value for key, value in recorded.items() if not key.startswith("_")
    }, "the answers in .cookiecutter.json and .cruft.json disagree"

    git(first, env, "init", "--quiet", "--initial-branch", "main")
    commit_all(first, env, "Generated")
    cruft(first, env, "check")
    cruft(first, env, "diff", "--exit-code")


def test_update_brings_runtime_and_feature_changes(tmp_path: Path, template: Path, env: dict[str, str]) -> None:
    project = create(template, tmp_path / "output", env)
    git(project, env, "init", "--quiet", "--initial-branch", "main")
    generated = commit_all(project, env, "Generated")

    append(template / RUNTIME_FILE, RUNTIME_LINE)
    append(template / FEATURE_FILE, FEATURE_LINE)
    new_commit = commit_all(template, env, "Change the runtime and a feature")
    out_of_date = cruft(project, env, "check", expect=1)
    assert "out of date" in out_of_date.stdout

    update = cruft(project, env, "update", "--skip-apply-ask")
    assert "Project's cruft has been updated" in update.stdout, update.stdout + update.stderr

    assert_no_conflicts(project, env)
    runtime, feature = in_project(project, RUNTIME_FILE), in_project(project, FEATURE_FILE)
    assert runtime.read_text().endswith(RUNTIME_LINE), f"{runtime} did not get the runtime change"
    assert feature.read_text().endswith(FEATURE_LINE), f"{feature} did not get the feature change"
    changed = set(git(project, env, "diff", "--name-only", generated).split())
    relative = {path.relative_to(project).as_posix() for path in (runtime, feature)}
    assert relative <= changed <= relative | {".cruft.json", ".cookiecutter.json"}, changed

    cruft_state = json.loads((project / ".cruft.json").read_text())
    assert cruft_state["commit"] == new_commit
    assert cruft_state["context"]["cookiecutter"]["_commit"] == new_commit
    commit_all(project, env, "Update from the template")
    cruft(project, env, "check")
    cruft(project, env, "diff", "--exit-code")


def test_update_keeps_the_users_edits(tmp_path: Path, template: Path, env: dict[str, str]) -> None:
    project = create(template, tmp_path / "output", env)
    app = in_project(project, APP_FILE)
    append(app, USER_LINE)
    git(project, env, "init", "--quiet", "--initial-branch", "main")
    commit_all(project, env, "Generated, then edited")

    append(template / RUNTIME_FILE, RUNTIME_LINE)
    commit_all(template, env, "Change the runtime")
    cruft(project, env, "update", "--skip-apply-ask")

    assert_no_conflicts(project, env)
    assert in_project(project, RUNTIME_FILE).read_text().endswith(RUNTIME_LINE)
    assert app.read_text().endswith(USER_LINE), "the update dropped the user's edit"
    cruft(project, env, "check")
    # What is left between the project and its template is the user's edit, nothing else.
    diff = cruft(project, env, "diff", "--exit-code", expect=1).stdout
    changed = re.findall(r"^diff --git upstream-template-old/(\S+) ", diff, re.MULTILINE)
    assert changed == [app.relative_to(project).as_posix()], diff
