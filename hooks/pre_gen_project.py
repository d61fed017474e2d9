"""Reject answers that would generate a broken project, before any file is written.

Each rule is one small function that returns a problem (naming the fix) or None.
The first problem found is printed as one `ERROR: <field>: ...` line and stops generation;
cookiecutter then removes the half-made output folder.
"""

import keyword
import re
import sys

ANSWERS = {
    "project_name": {{ cookiecutter.project_name | json_string }},
    "description": {{ cookiecutter.description | json_string }},
    "author_name": {{ cookiecutter.author_name | json_string }},
    "project_slug": {{ cookiecutter.project_slug | json_string }},
    "package_name": {{ cookiecutter.package_name | json_string }},
    "author_email": {{ cookiecutter.author_email | json_string }},
    "version": {{ cookiecutter.version | json_string }},
    "python_version": {{ cookiecutter.python_version | json_string }},
    "port": {{ cookiecutter.port | json_string }},
    "use_stream": {{ cookiecutter.use_stream }},
    "use_fetch": {{ cookiecutter.use_fetch }},
    "use_websocket": {{ cookiecutter.use_websocket }},
    "use_sse": {{ cookiecutter.use_sse }},
    "use_chat": {{ cookiecutter.use_chat }},
    "broker": {{ cookiecutter.broker | json_string }},
}

# Modules the generated project or its tests import: a package of the same name would shadow them.
DEPENDENCIES = {"bottle", "gevent", "geventwebsocket", "greenlet", "pytest", "webtest", "websocket", "zope"}
LOWEST_PYTHON = (3, 10)  # gevent 26 needs 3.10
LONGEST_NAME = 40  # characters of a slug or package name (see too_long)
ENDPOINTS = ("use_stream", "use_fetch", "use_websocket", "use_sse")
CHAT_TRANSPORTS = ("use_fetch", "use_websocket", "use_sse")  # the endpoints a chat can reach clients by


def check_one_line(text):
    # Free text goes where each file escapes it for its own language, but a TOML or YAML string
    # and a Dockerfile label hold one line, and TOML and YAML refuse control characters in it.
    if not text.isprintable():
        return "must be one line of printable text (no newline, tab or control character)"
    return None


def check_project_name(name):
    if not name.strip():
        return "is empty; give the project a name, e.g. project_name='Chat Server'"
    return check_one_line(name)


def too_long(name, example):
    """Longer slugs and package names would push generated lines past ruff's line length."""
    if len(name) > LONGEST_NAME:
        return f"{name!r} is longer than {LONGEST_NAME} characters; give a shorter one, e.g. {example}"
    return None


def check_project_slug(slug):
    if problem := too_long(slug, "project_slug=chat-server"):
        return problem
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", slug):
        return (
            f"{slug!r} is not a valid folder and distribution name; use lowercase letters, "
            "digits and single '-' between words, starting with a letter, e.g. project_slug=chat-server"
        )
    return None


def check_package_name(name):
    if problem := too_long(name, "package_name=chat_server"):
        return problem
    if not name.isidentifier() or not name.isascii():
        return f"{name!r} is not a valid Python identifier; use letters, digits and '_', e.g. package_name=chat_server"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a Python keyword; pick another name, e.g. package_name={name}_app"
    if name != name.lower():
        return f"{name!r} should be lowercase (PEP 8), e.g. package_name={name.lower()}"
    if name in DEPENDENCIES or name in sys.stdlib_module_names or name in {"test", "tests"}:
        return (
            f"{name!r} would shadow the module of that name that the project imports; "
            f"pick another, e.g. package_name={name}_app"
        )
    return None


def check_author_email(email):
    if not re.fullmatch(r"[^@\s\"<>]+@[^@\s\"<>]+\.[^@\s\"<>]+", email):
        return f"{email!r} is not an email address, e.g. author_email=you@example.com"
    return None


def check_version(version):
    if not re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", version):
        return f"{version!r} is not a PEP 440 version, e.g. version=0.1.0"
    return None


def check_python_version(version):
    match = re.fullmatch(r"(\d+)\.(\d+)", version)
    if not match or tuple(map(int, match.groups())) < LOWEST_PYTHON:
        lowest = ".".join(map(str, LOWEST_PYTHON))
        return f"{version!r} is not supported; give MAJOR.MINOR, {lowest} or newer, e.g. python_version=3.11"
    return None


def check_port(port):
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"{port!r} is not a TCP port; give a number from 1 to 65535, e.g. port=8080"
    return None


RULES = {
    "project_name": check_project_name,
    "description": check_one_line,
    "author_name": check_one_line,
    "project_slug": check_project_slug,
    "package_name": check_package_name,
    "author_email": check_author_email,
    "version": check_version,
    "python_version": check_python_version,
    "port": check_port,
}


def check_endpoints(answers):
    if not any(answers[name] for name in ENDPOINTS):
        return (
            "use_stream, use_fetch, use_websocket, use_sse: all four endpoints are off; "
            "turn at least one on, e.g. use_stream=true"
        )
    return None


def check_chat(answers):
    if answers["use_chat"] and not any(answers[name] for name in CHAT_TRANSPORTS):
        return (
            "use_chat: the chat needs long polling, WebSockets or events to reach its clients; "
            "set use_fetch=true, use_websocket=true or use_sse=true"
        )
    return None


def check_broker(answers):
    if answers["broker"] == "redis" and not answers["use_chat"]:
        return "broker: the Redis broker carries chat messages; set use_chat=true or leave broker=memory"
    return None


# Rules that weigh several answers together.
COMBINED_RULES = [check_endpoints, check_chat, check_broker]


def fail(message):
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    for field, rule in RULES.items():
        problem = rule(ANSWERS[field])
        if problem:
            fail(f"{field}: {problem}")
    for rule in COMBINED_RULES:
        problem = rule(ANSWERS)
        if problem:
            fail(problem)


if __name__ == "__main__":
    main()
