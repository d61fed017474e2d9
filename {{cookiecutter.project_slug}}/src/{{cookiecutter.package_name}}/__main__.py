"""Command line: parse flags, then serve.

`python -m {{ cookiecutter.package_name }}`, or the console script
`{{ cookiecutter.project_slug }}`.
"""

# First import: it monkey-patches the standard library before anything opens a socket.
from .runtime.server import serve  # isort: skip

import argparse
import logging

from .app import create_app
from .settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="{{ cookiecutter.project_slug }}",
        description="Serve {{ cookiecutter.project_slug }} with gevent.",
        epilog=f"Every setting can also be set with a {Settings.env_prefix}* environment variable.",
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port, 0 for any free one (default: {{ cookiecutter.port }})")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(host=args.host, port=args.port, log_level=args.log_level)
    except SettingsError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
