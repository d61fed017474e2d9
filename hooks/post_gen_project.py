"""Remove the files of every feature that was not selected, then print the next steps.

FEATURE_PATHS is the one list of which files belong to which feature: tests/test_bake.py reads
it from this file to know what each bake must contain.
"""

import shutil
import sys
from pathlib import Path

PACKAGE = {{ cookiecutter.package_name | tojson }}

SELECTED = {
    "use_stream": {{ cookiecutter.use_stream }},
    "use_fetch": {{ cookiecutter.use_fetch }},
    "use_websocket": {{ cookiecutter.use_websocket }},
    "use_sse": {{ cookiecutter.use_sse }},
    "use_js_client": {{ cookiecutter.use_js_client }},
    "use_chat": {{ cookiecutter.use_chat }},
    "use_docker": {{ cookiecutter.use_docker }},
    "redis_broker": {{ cookiecutter.broker == "redis" }},
}
# The page's chunk reader serves both /stream and /fetch.
SELECTED["chunked_responses"] = SELECTED["use_stream"] or SELECTED["use_fetch"]
# docker-compose.yml puts nginx in front of several replicas only when Redis joins them.
SELECTED["compose_nginx"] = SELECTED["use_docker"] and SELECTED["redis_broker"]

# Every path that belongs to one feature, and nothing else ({package}: the package folder).
FEATURE_PATHS = {
    "use_stream": ["src/{package}/stream.py", "tests/test_stream.py"],
    "use_fetch": ["src/{package}/fetch.py", "tests/test_fetch.py"],
    "use_websocket": ["src/{package}/websocket.py", "src/{package}/static/websocket.js", "tests/test_websocket.py"],
    "use_sse": ["src/{package}/sse.py", "src/{package}/static/events.js", "tests/test_sse.py"],
    "use_js_client": ["src/{package}/client.py", "src/{package}/static", "tests/test_client.py"],
    "chunked_responses": ["src/{package}/static/chunks.js"],
    "use_chat": [
        "src/{package}/chat.py",
        "src/{package}/chat_broker.py",
        "src/{package}/static/chat.js",
        "tests/test_chat.py",
    ],
    "redis_broker": ["src/{package}/chat_redis.py", "tests/test_chat_redis.py"],
    "use_docker": ["Dockerfile", ".dockerignore", "docker-compose.yml", "tests/test_docker.py"],
    "compose_nginx": ["deploy"],
}


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main() -> None:
    for feature, paths in FEATURE_PATHS.items():
        if not SELECTED[feature]:
            for path in paths:
                remove(Path(path.format(package=PACKAGE)))
    # To stderr: tools that regenerate the project (cruft diff) keep their output clean.
    print(
        "\nCreated {{ cookiecutter.project_slug }}. Next steps:\n"
        "  cd {{ cookiecutter.project_slug }}\n"
        "  python3 -m venv .venv && . .venv/bin/activate\n"
        "  pip install -e '.[test]'\n"
        "  pytest\n"
        "  python -m {{ cookiecutter.package_name }}  (serves http://127.0.0.1:{{ cookiecutter.port }})\n",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
