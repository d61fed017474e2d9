"""Run Autobahn|Testsuite's fuzzing client (cases 1-7 and 9) against a WebSocket echo server.

    .venv/bin/python bench/autobahn/run.py                     # the default bake of this template
    .venv/bin/python bench/autobahn/run.py --ref HEAD          # the committed template, not the work tree
    .venv/bin/python bench/autobahn/run.py --summary build/autobahn.md --require-ok
    .venv/bin/python bench/autobahn/run.py --path / -- python my_echo.py --port {port}

The suite is Python 2 only, so the first run builds it a home in --venv (build/autobahn-venv):
Debian 11's python2.7 unpacked there (apt-get download + dpkg -x, nothing installed system-wide)
and requirements.txt installed into it with pip 20.3.4. The server under test gets a free port on
127.0.0.1 ({port} in its command line), the client a bounded time; the harness then prints the
behaviour counts and every case that was not OK. Exit 0 unless the harness itself broke (2);
with --require-ok, 1 when any case is neither OK nor INFORMATIONAL.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"

CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*"]
EXCLUDED = ["12.*", "13.*"]  # permessage-deflate: the server does not offer it
BEHAVIOURS = ["OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED"]
ACCEPTED = {"OK", "INFORMATIONAL"}  # what --require-ok lets pass

# Debian 11 is the last release with a python2.7 package. Unpacked (not installed), with the two
# libraries of its release that Debian 12 lacks beside it, it runs on Debian 12. When bullseye
# leaves deb.debian.org, point --debian-mirror at http://archive.debian.org/debian.
DEBIAN_SUITE = "bullseye"
DEBIAN_PACKAGES = [
    "python2.7-minimal", "libpython2.7-minimal", "libpython2.7-stdlib", "python2.7",
    "libpython2.7-dev", "python2.7-dev",  # headers: wsaccel is built from source
    "libssl1.1", "libffi7",  # libraries python2.7 links that newer Debian no longer ships
]  # fmt: skip
SUITE_VERSION = next(
    line.split("==")[1] for line in REQUIREMENTS.read_text().splitlines() if line.startswith("autobahntestsuite==")
)
BOOTSTRAP = ["pip==20.3.4", "setuptools==44.1.1", "wheel==0.37.1"]  # the last ones for Python 2.7

# wstest as a one-liner: addsitedir (not PYTHONPATH) so that zope's namespace .pth files are read.
LAUNCH = (
    "import site, sys; site.addsitedir(sys.argv.pop(1)); sys.argv[0] = 'wstest';"
    "from autobahntestsuite.wstest import run; run()"
)


def log(message: str) -> None:
    print(f"[autobahn {time.strftime('%H:%M:%S')}] {message}", flush=True)


class HarnessError(Exception):
    """The harness could not do its job (exit 2), as opposed to the server failing cases."""


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_logged(command: list, log_path: Path, **kwargs) -> None:
    with open(log_path, "ab") as out:
        out.write(f"\n$ {' '.join(map(str, command))}\n".encode())
        out.flush()
        try:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        except FileNotFoundError:  # no apt-get or dpkg: not Debian-like, so --python2 is the way
            raise HarnessError(f"{command[0]} not found; give a Python 2.7 with --python2") from None
    if result.returncode != 0:
        raise HarnessError(f"failed: {' '.join(map(str, command))} (full log: {log_path})\n{tail(log_path)}")


# The suite: a Python 2.7 of its own and the pinned packages


class Suite:
    def __init__(self, venv: Path, python2: str | None, mirror: str) -> None:
        self.venv, self.mirror = venv, mirror
        self.root = venv / "python2.7"  # the unpacked Debian packages (usr/...)
        self.site = venv / "site"  # pip --target: the suite and its dependencies
        self.python = Path(python2) if python2 else self.root / "usr" / "bin" / "python2.7"
        self.env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # Python 2 deprecation noise
        if not python2:
            # Only libssl1.1 and libffi7 live here; everything else comes from the host.
            libs = str(self.root / "usr" / "lib" / (sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"))
            self.env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libs, os.environ.get("LD_LIBRARY_PATH")]))

    def command(self, *args: str) -> list[str]:
        return [str(self.python), "-c", LAUNCH, str(self.site), *args]

    def ensure(self) -> None:
        stamp = self.site / ".installed"
        wanted = "\n".join([str(self.python), *BOOTSTRAP, REQUIREMENTS.read_text()])
        if stamp.exists() and stamp.read_text() == wanted:
            return
        self.venv.mkdir(parents=True, exist_ok=True)
        install_log = self.venv / "install.log"
        install_log.write_text("")
        if not self.python.exists():
            if self.python != self.root / "usr" / "bin" / "python2.7":
                raise HarnessError(f"--python2 {self.python}: no such file")
            self.unpack_python(install_log)
        log(f"installing the suite into {self.site} (about a minute; log: {install_log})")
        shutil.rmtree(self.site, ignore_errors=True)  # pip --target leaves old versions' metadata
        wheels = self.venv / "bootstrap"
        # Python 2.7 has no pip here: this Python's pip fetches the last py2 wheels of pip itself,
        # and pip runs straight from its wheel to install them.
        run_logged(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
             "--python-version", "2.7", "--dest", wheels, *BOOTSTRAP],
            install_log,
        )  # fmt: skip
        pip_wheel = next(wheels.glob("pip-*.whl"))
        run_logged(
            [self.python, f"{pip_wheel}/pip", "install", "--quiet", "--upgrade", "--target", self.site,
             *sorted(wheels.glob("*.whl"))],
            install_log, env=self.env,
        )  # fmt: skip
        # Debian's python2.7 looks for its headers under /usr/include: point the compiler at ours.
        include = self.root / "usr" / "include"
        env = {**self.env, "PYTHONPATH": str(self.site), "CFLAGS": f"-I{include} -I{include}/python2.7"}
        run_logged(
            [self.python, "-m", "pip", "install", "--quiet", "--upgrade", "--no-deps", "--target", self.site,
             "-r", REQUIREMENTS],
            install_log, env=env, timeout=900,
        )  # fmt: skip
        stamp.write_text(wanted)

    def unpack_python(self, install_log: Path) -> None:
        log(f"fetching python2.7 from Debian {DEBIAN_SUITE} into {self.root}")
        apt = self.venv / "apt"
        for folder in ("lists/partial", "cache/archives/partial", "debs"):
            (apt / folder).mkdir(parents=True, exist_ok=True)
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        (apt / "sources.list").write_text(f"deb [signed-by={keyring}] {self.mirror} {DEBIAN_SUITE} main\n")
        # A private sources list, package lists and cache: the host's apt setup is left alone.
        options = [
            "-o", f"Dir::Etc::sourcelist={apt / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache={apt / 'cache'}",
        ]  # fmt: skip
        run_logged(["apt-get", *options, "update"], install_log, timeout=300)
        run_logged(["apt-get", *options, "download", *DEBIAN_PACKAGES], install_log, cwd=apt / "debs", timeout=300)
        for deb in sorted((apt / "debs").glob("*.deb")):
            run_logged(["dpkg", "-x", deb, self.root], install_log)


# The server under test


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bake_default(work: Path, ref: str | None, template: Path) -> Path:
    """Bake the template with its default answers; with a git ref, bake that commit's template."""
    if ref:
        # git archive reads the commit only: the work tree (maybe mid-edit) is left alone.
        archive = subprocess.run(["git", "-C", template, "archive", "--format=tar", ref], capture_output=True)
        if archive.returncode != 0:
            raise HarnessError(f"git archive {ref}: {archive.stderr.decode().strip()}")
        template = work / "template"
        template.mkdir()
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(template, filter="data")
    # cookiecutter's CLI, quietly: its post-gen hook prints next steps meant for a person.
    bake = subprocess.run(
        [sys.executable, "-m", "cookiecutter", template, "--no-input", "--output-dir", work / "bake"],
        capture_output=True, text=True,
    )  # fmt: skip
    if bake.returncode != 0:
        raise HarnessError(f"cookiecutter failed:\n{bake.stdout}{bake.stderr}")
    (project,) = (work / "bake").iterdir()
    return project


class Server:
    """One server process on a free loopback port, in a session of its own so that stop() can
    signal exactly the processes it started (a wrapper script's children included) by group id."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.argv = [part.replace("{port}", str(self.port)) for part in argv]
        env = {name: value.replace("{port}", str(self.port)) for name, value in env.items()}
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.process = subprocess.Popen(
                self.argv, env={**os.environ, "PORT": str(self.port), **env},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.1)
        state = "still starting" if self.process.poll() is None else f"exited with {self.process.returncode}"
        raise HarnessError(f"the server did not listen on 127.0.0.1:{self.port} ({state}):\n{tail(self.log_path)}")

    def stop(self) -> int | None:
        """Stop the server; return its exit code if it had already exited on its own."""
        early = self.process.poll()
        if early is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return early


# The run and its report


def run_fuzzer(suite: Suite, url: str, cases: list[str], outdir: Path, work: Path, timeout: float) -> None:
    spec = work / "fuzzingclient.json"
    spec.write_text(
        json.dumps(
            {
                "outdir": str(outdir),
                "servers": [{"agent": "server", "url": url}],
                "cases": cases,
                "exclude-cases": EXCLUDED,
                "exclude-agent-cases": {},
            },
            indent=2,
        )
    )
    wstest_log = work / "wstest.log"
    with open(wstest_log, "wb") as out:
        client = subprocess.Popen(
            suite.command("--mode", "fuzzingclient", "--spec", str(spec)),
            cwd=work, env=suite.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            client.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            client.kill()  # our own child, by PID
            client.wait()
            raise HarnessError(f"wstest did not finish within {timeout:.0f} s:\n{tail(wstest_log)}") from None
    if client.returncode != 0 or not (outdir / "index.json").exists():
        raise HarnessError(f"wstest exited with {client.returncode} and no report:\n{tail(wstest_log)}")


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def summarise(index: dict) -> dict:
    (results,) = index.values()  # one agent
    cases = sorted(results, key=case_key)
    return {
        "total": len(cases),
        "behaviour": collections.Counter(results[c]["behavior"] for c in cases),
        "close": collections.Counter(results[c]["behaviorClose"] for c in cases),
        # Not OK in either its behaviour or its closing handshake.
        "not_ok": [(c, results[c]) for c in cases if {results[c]["behavior"], results[c]["behaviorClose"]} != {"OK"}],
        "failing": [c for c in cases if not {results[c]["behavior"], results[c]["behaviorClose"]} <= ACCEPTED],
    }


def report_lines(summary: dict, markdown: bool) -> list[str]:
    def counts(counter: collections.Counter, names: list[str]) -> str:
        names = names + sorted(set(counter) - set(names))
        return ", ".join(f"{counter.get(name, 0)} {name}" for name in names)

    lines = [
        f"Cases run: {summary['total']}",
        f"Behaviour: {counts(summary['behaviour'], BEHAVIOURS)}",
        f"Closing handshake (behaviorClose): {counts(summary['close'], ['OK'])}",
        "Not OK:" if summary["not_ok"] else "Not OK: none",
    ]
    for case, result in summary["not_ok"]:
        lines.append(
            f"  {case}: {result['behavior']} (close {result['behaviorClose']}, "
            f"remote close code {result.get('remoteCloseCode')}, {result.get('duration')} ms)"
        )
    if markdown:
        lines = [f"- {line}" if not line.startswith("  ") else f"  - {line.strip()}" for line in lines]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server", nargs="*", help="server command after --, {port} is replaced (default: the bake)")
    parser.add_argument("--path", default="/websocket", help="the echo endpoint's path (default /websocket)")
    parser.add_argument("--venv", type=Path, default=REPO / "build" / "autobahn-venv", help="the suite's home")
    parser.add_argument("--python2", help="use this Python 2.7 (or PyPy 2) instead of fetching Debian's")
    parser.add_argument("--debian-mirror", default="http://deb.debian.org/debian")
    parser.add_argument("--template", type=Path, default=REPO, help="template to bake when no command is given")
    parser.add_argument("--ref", help="bake this git commit of --template instead of its work tree")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case patterns")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds the whole fuzzing run may take")
    parser.add_argument("--summary", type=Path, help="write a markdown summary here")
    parser.add_argument("--report-dir", type=Path, help="keep the suite's HTML/JSON report here")
    parser.add_argument("--require-ok", action="store_true", help="exit 1 if a case is not OK or INFORMATIONAL")
    args = parser.parse_args()

    started = time.monotonic()
    suite = Suite(args.venv.resolve(), args.python2, args.debian_mirror)
    suite.ensure()
    with tempfile.TemporaryDirectory(prefix="autobahn-") as tmp:
        work = Path(tmp)
        if args.server:
            argv, env, described = args.server, {}, " ".join(args.server)
        else:
            log("baking the default project" + (f" from {args.ref}" if args.ref else ""))
            project = bake_default(work, args.ref, args.template.resolve())
            package = next((project / "src").iterdir()).name  # realtime_app unless renamed
            prefix = package.upper() + "_"
            argv = [sys.executable, "-m", package]
            env = {
                "PYTHONPATH": str(project / "src"),
                prefix + "PORT": "{port}",
                # 9.1.6 and 9.2.6 send 16 MiB messages; the default limit (1 MiB) would refuse them.
                prefix + "MAX_MESSAGE_SIZE": str(16 * 1024 * 1024),
                prefix + "LOG_LEVEL": "WARNING",
            }
            described = f"default bake of {args.ref or 'the work tree'}: python -m {package}"
        server = Server(argv, env, work / "server.log")
        try:
            server.wait_ready()
            url = f"ws://127.0.0.1:{server.port}{args.path}"
            log(f"fuzzing {url} ({described}); up to {args.timeout:.0f} s")
            outdir = args.report_dir.resolve() if args.report_dir else work / "reports"
            fuzz_started = time.monotonic()
            run_fuzzer(suite, url, args.cases.split(","), outdir, work, args.timeout)
            fuzz_seconds = time.monotonic() - fuzz_started
        finally:
            early_exit = server.stop()
        summary = summarise(json.loads((outdir / "index.json").read_text()))
        server_tail = tail(server.log_path) if early_exit is not None else ""

    lines = report_lines(summary, markdown=False)
    lines.append(f"Fuzzing took {fuzz_seconds:.0f} s ({time.monotonic() - started:.0f} s with setup).")
    if early_exit is not None:
        lines.append(f"WARNING: the server exited by itself during the run (code {early_exit}):\n{server_tail}")
    print("\n".join(lines))
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        body = [
            "# Autobahn|Testsuite: cases " + ", ".join(args.cases.split(",")),
            "",
            f"Server: {described}, at `ws://127.0.0.1:<port>{args.path}`.",
            f"Client: autobahntestsuite {SUITE_VERSION} (wstest fuzzingclient), {time.strftime('%Y-%m-%d')}.",
            "",
            *report_lines(summary, markdown=True),
            f"- Fuzzing took {fuzz_seconds:.0f} s.",
        ]
        args.summary.write_text("\n".join(body) + "\n")
        log(f"summary written to {args.summary}")
    if args.require_ok and summary["failing"]:
        print(f"--require-ok: {len(summary['failing'])} case(s) neither OK nor INFORMATIONAL")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as error:
        print(f"harness error: {error}", file=sys.stderr)
        sys.exit(2)
