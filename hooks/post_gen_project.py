"""Remove the files of every feature that was not selected, then print the next steps."""

import shutil
from pathlib import Path

PACKAGE = Path("src") / {{ cookiecutter.package_name | tojson }}

SELECTED = {
    "use_stream": {{ cookiecutter.use_stream }},
    "use_fetch": {{ cookiecutter.use_fetch }},
    "use_websocket": {{ cookiecutter.use_websocket }},
    "use_js_client": {{ cookiecutter.use_js_client }},
    "use_chat": {{ cookiecutter.use_chat }},
    "use_docker": {{ cookiecutter.use_docker }},
    "redis_broker": {{ cookiecutter.broker == "redis" }},
}
# The page's chunk reader serves both /stream and /fetch.
SELECTED["chunked_responses"] = SELECTED["use_stream"] or SELECTED["use_fetch"]
# docker-compose.yml puts nginx in front of several replicas only when Redis joins them.
SELECTED["compose_nginx"] = SELECTED["use_docker"] and SELECTED["redis_broker"]

# Every path that belongs to one feature, and nothing else.
FEATURE_PATHS = {
    "use_stream": [PACKAGE / "stream.py", Path("tests/test_stream.py")],
    "use_fetch": [PACKAGE / "fetch.py", Path("tests/test_fetch.py")],
    "use_websocket": [
        PACKAGE / "websocket.py",
        PACKAGE / "websocket_connection.py",
        PACKAGE / "websocket_handler.py",
        PACKAGE / "static/websocket.js",
        Path("tests/test_websocket.py"),
        Path("tests/test_websocket_protocol.py"),
    ],
    "use_js_client": [PACKAGE / "client.py", PACKAGE / "static", Path("tests/test_client.py")],
    "chunked_responses": [PACKAGE / "static/chunks.js"],
    "use_chat": [
        PACKAGE / "chat.py",
        PACKAGE / "chat_broker.py",
        PACKAGE / "static/chat.js",
        Path("tests/test_chat.py"),
    ],
    "redis_broker": [PACKAGE / "chat_redis.py", Path("tests/test_chat_redis.py")],
    "use_docker": [
        Path("Dockerfile"),
        Path(".dockerignore"),
        Path("docker-compose.yml"),
        Path("tests/test_docker.py"),
    ],
    "compose_nginx": [Path("deploy")],
}


def remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main():
    for feature, paths in FEATURE_PATHS.items():
        if not SELECTED[feature]:
            for path in paths:
                remove(path)
    print(
        "\nCreated {{ cookiecutter.project_slug }}. Next steps:\n"
        "  cd {{ cookiecutter.project_slug }}\n"
        "  python3 -m venv .venv && . .venv/bin/activate\n"
        "  pip install -e '.[test]'\n"
        "  pytest\n"
        "  python -m {{ cookiecutter.package_name }}  (serves http://127.0.0.1:{{ cookiecutter.port }})\n"
    )


if __name__ == "__main__":
    main()
