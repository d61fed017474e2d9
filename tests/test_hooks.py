"""Answers from the command line, as a user types them: bad ones stop with one clear line and no folder."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BAD_ANSWERS = [
    # (answers, field named in the error, words that say how to fix it)
    (["project_name="], "project_name", "give the project a name"),
    (["project_name=   "], "project_name", "give the project a name"),
    (["project_name=Two\nlines"], "project_name", "one line of printable text"),
    (["project_name=A\ttab"], "project_name", "one line of printable text"),
    (["project_name=A\x07bell"], "project_name", "one line of printable text"),
    (["description=Two\nlines"], "description", "one line of printable text"),
    (["description=A\x7fdelete"], "description", "one line of printable text"),
    (["author_name=Ann\x85Other"], "author_name", "one line of printable text"),
    (["project_slug=" + "a" * 41], "project_slug", "longer than 40 characters"),
    (["package_name=" + "a" * 41], "package_name", "longer than 40 characters"),
    (["project_slug=My App"], "project_slug", "lowercase letters"),
    (["project_slug=-app"], "project_slug", "starting with a letter"),
    (["package_name=1app"], "package_name", "not a valid Python identifier"),
    (["package_name=my-app"], "package_name", "not a valid Python identifier"),
    (["package_name=class"], "package_name", "is a Python keyword"),
    (["package_name=match"], "package_name", "is a Python keyword"),
    (["package_name=MyApp"], "package_name", "should be lowercase"),
    (["package_name=bottle"], "package_name", "would shadow"),
    (["package_name=gevent"], "package_name", "would shadow"),
    (["package_name=geventwebsocket"], "package_name", "would shadow"),
    (["package_name=websocket"], "package_name", "would shadow"),
    (["package_name=json"], "package_name", "would shadow"),
    (["package_name=test"], "package_name", "would shadow"),
    (["package_name=tests"], "package_name", "would shadow"),
    (["author_email=nobody"], "author_email", "e.g. author_email=you@example.com"),
    (["version=one"], "version", "e.g. version=0.1.0"),
    (["python_version=3.9"], "python_version", "3.10 or newer"),
    (["python_version=three"], "python_version", "MAJOR.MINOR"),
    (["port=http"], "port", "from 1 to 65535"),
    (["port=0"], "port", "from 1 to 65535"),
    (["port=65536"], "port", "from 1 to 65535"),
    (["port=-1"], "port", "from 1 to 65535"),
    (["port=80.5"], "port", "from 1 to 65535"),
    (
        ["use_stream=false", "use_fetch=false", "use_websocket=false", "use_sse=false"],
        "use_stream, use_fetch, use_websocket, use_sse",
        "turn at least one on",
    ),
    (
        ["use_stream=no", "use_fetch=n", "use_websocket=0", "use_sse=off", "use_js_client=false"],
        "use_stream, use_fetch, use_websocket, use_sse",
        "turn at least one on",
    ),
    (
        ["use_chat=true", "use_fetch=false", "use_websocket=false", "use_sse=false"],
        "use_chat",
        "set use_fetch=true, use_websocket=true or use_sse=true",
    ),
    (["broker=redis"], "broker", "set use_chat=true"),
]


def generate(output: Path, *answers: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cookiecutter", str(ROOT), "--no-input", "--output-dir", str(output), *answers]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("answers", "field", "fix"), BAD_ANSWERS, ids=lambda value: str(value))
def test_bad_answer_stops_with_one_error_line_and_no_folder(tmp_path, answers, field, fix):
    result = generate(tmp_path, *answers)

    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"ERROR: {field}: ")]
    assert len(errors) == 1, result.stderr
    assert fix in errors[0]
    assert list(tmp_path.iterdir()) == [], "a half-made project folder was left behind"


def test_a_boolean_that_is_not_one_is_refused_without_a_folder(tmp_path):
    result = generate(tmp_path, "use_stream=maybe")
    assert result.returncode != 0
    assert "use_stream could not be converted to a boolean" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_broker_is_refused_without_a_folder(tmp_path):
    result = generate(tmp_path, "use_chat=true", "broker=kafka")
    assert result.returncode != 0
    # cookiecutter itself refuses a value that is not one of a choice's options, with this line.
    assert "kafka provided for choice variable broker, but the choices are ['memory', 'redis']" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("false", ["false", "False", "no", "n", "0", "off"])
def test_booleans_work_from_the_command_line(tmp_path, false):
    result = generate(tmp_path, f"use_websocket={false}")
    assert result.returncode == 0, result.stderr
    package = tmp_path / "realtime-app/src/realtime_app"
    assert (package / "stream.py").exists()
    assert not (package / "websocket.py").exists()
    assert not (package / "static/websocket.js").exists()


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Chat Server!", "chat-server"),
        ("O'Brien's Café App", "o-briens-cafe-app"),
        ("It’s «Ünïcödé» & <Co> 🚀", "its-unicode-co"),
        ("!!!", "project"),
    ],
)
def test_derived_names_follow_the_project_name(tmp_path, name, slug):
    result = generate(tmp_path, f"project_name={name}")
    assert result.returncode == 0, result.stderr
    package = slug.replace("-", "_")
    assert (tmp_path / slug / "src" / package / "runtime" / "server.py").exists()
    assert f"cd {slug}" in result.stderr  # the next steps, printed by the post-gen hook


def test_every_question_has_a_prompt_label():
    import json

    questions = json.loads((ROOT / "cookiecutter.json").read_text())
    labels = questions["__prompts__"]
    asked = {name for name in questions if not name.startswith("_")}
    assert asked == set(labels)
    assert all(isinstance(questions[name], bool) for name in questions if name.startswith("use_"))


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_rendered_hooks_pass_ruff(tmp_path, hook):
    from cookiecutter.environment import StrictEnvironment
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(ROOT / "cookiecutter.json")
    context["cookiecutter"] = prompt_for_config(context, no_input=True)  # the default answers
    source = (ROOT / "hooks" / hook).read_text()
    rendered = tmp_path / hook
    rendered.write_text(
        StrictEnvironment(context=context, keep_trailing_newline=True).from_string(source).render(**context)
    )
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--line-length", "120"]
        + ["--select", "E,F,W,B,UP,SIM,I", str(rendered)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
