"""Benchmark the generated project side by side with the servers a user would pick instead.

    python bench/run.py            # what `make bench` runs: every scenario, 3 runs each
    python bench/run.py --quick    # smaller and shorter, to try the harness out
    python bench/run.py --only echo,idle --runs 1

It bakes the default project, installs it into a venv of its own (build/bench/venv), and runs
each scenario against it and against peer servers doing the same work (bench/peers/), one fresh
server per run, the server pinned to CPU 0 and the load client (bench/loadclient.mjs, Node) to
CPU 1. Each figure is the median of the runs. Every load is bounded in count and time and only
ever goes to 127.0.0.1. It writes bench/RESULTS.md, bench/results.png and bench/results.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BUILD = REPO / "build" / "bench"
CLIENT = BENCH / "loadclient.mjs"
PEERS = BENCH / "peers"
PACKAGE = "realtime_app"  # the default bake's package name
ENV_PREFIX = PACKAGE.upper() + "_"

STREAM_DELAYS = (1.0, 1.0)  # each stream lasts 2 s: START, 1 s, MIDDLE, 1 s, END
FETCH_CHUNKS, FETCH_INTERVAL = 3, 1.0  # each queue fetch lasts 2 s too
THREADED_CUTOFF = 6.0  # seconds the threaded server gets before its run is cut off
CHAT_IDLE_PATH = "/chat/idle/ws"  # the room the idle chat subscribers join (nobody posts to it)
IDLE_SETTLE = 1.5  # seconds between the last idle socket's opening and the reading of RSS


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# Setup: the baked projects and their venv


@dataclass
class Setup:
    app_python: Path  # the venv's python, with the baked project installed
    bake: Path  # the baked project folder
    chat_src: Path | None  # src/ of a bake with the chat feature, if it could be baked
    versions: dict[str, str] = field(default_factory=dict)


def run_quiet(command: list, **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def bake(output: Path, **extra: str) -> Path:
    from cookiecutter.main import cookiecutter

    shutil.rmtree(output, ignore_errors=True)
    return Path(cookiecutter(str(REPO), no_input=True, output_dir=str(output), extra_context=extra))


def prepare() -> Setup:
    BUILD.mkdir(parents=True, exist_ok=True)
    log("baking the default project")
    project = bake(BUILD / "bake")
    venv = BUILD / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        log("creating build/bench/venv")
        run_quiet([sys.executable, "-m", "venv", str(venv)])
    # As a user installs it: its dependencies include websockets, whose C unmask it uses.
    log("installing the baked project and its dependencies into build/bench/venv")
    run_quiet([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], timeout=300)
    run_quiet([python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", str(project)], timeout=300)
    run_quiet([python, "-m", "pip", "install", "--quiet", str(project)], timeout=300)
    chat_src = None
    log("baking a second project with the chat feature for the chat scenarios")
    try:
        chat_src = bake(BUILD / "bake-chat", use_chat="yes") / "src"
    except Exception as error:  # only the chat scenarios need it: report, carry on
        log(f"could not bake the chat feature, skipping the chat scenarios: {error}")
    setup = Setup(python, project, chat_src)
    setup.versions = versions(python)
    return setup


def versions(app_python: Path) -> dict[str, str]:
    found = {"python": platform.python_version()}
    installed = {
        package["name"].lower(): package["version"]
        for package in json.loads(run_quiet([app_python, "-m", "pip", "list", "--format=json"]))
    }
    for name in ("gevent", "greenlet", "bottle", "gevent-websocket"):
        found[name] = installed[name]
    # Ours unmasks with websockets' C apply_mask when the install brought it, in pure Python otherwise.
    found["websockets (ours)"] = installed.get("websockets", "missing")
    for name in ("aiohttp", "websockets", "waitress", "sse-starlette", "uvicorn", "matplotlib"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    found["node"] = run_quiet(["node", "--version"]).strip()
    return found


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        memory_kib = int(info.readline().split()[1])
    os_name = platform.platform()
    if Path("/etc/os-release").exists():
        release = Path("/etc/os-release").read_text()
        match = re.search(r'PRETTY_NAME="([^"]+)"', release)
        os_name = match.group(1) if match else os_name
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "os": f"{os_name}, Linux {platform.release()}",
    }


# Servers


def pin(cpu: int) -> list[str]:
    """taskset prefix for one CPU, when there are two or more CPUs to spread over."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerSpec:
    name: str
    argv: list  # the command line; RunningServer adds --port
    env: dict[str, str] = field(default_factory=dict)


class RunningServer:
    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = free_port()
        self.log_path = BUILD / "logs" / f"{spec.name.replace(' ', '_')}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                pin(0) + [str(part) for part in spec.argv] + ["--port", str(self.port)],
                env={**os.environ, **spec.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    time.sleep(0.3)  # let it finish starting up
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not start:\n{self.log_path.read_text()}")

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def server_specs(setup: Setup, peer_python: str) -> dict[str, ServerSpec]:
    ours_env = {
        ENV_PREFIX + "LOG_LEVEL": "WARNING",  # no access log: the peers keep none either
        ENV_PREFIX + "STREAM_DELAYS": ",".join(map(str, STREAM_DELAYS)),
        ENV_PREFIX + "FETCH_CHUNKS": str(FETCH_CHUNKS),
        ENV_PREFIX + "FETCH_INTERVAL": str(FETCH_INTERVAL),
        ENV_PREFIX + "MAX_CONNECTIONS": "12000",  # 10,000 streams or SSE clients, and the warm-up
        "PYTHONPATH": "",
    }
    ours = [str(setup.app_python), "-m", PACKAGE]
    peer_args = [
        "--delays",
        ",".join(map(str, STREAM_DELAYS)),
        "--fetch-chunks",
        str(FETCH_CHUNKS),
        "--fetch-interval",
        str(FETCH_INTERVAL),
    ]
    specs = {
        "ours": ServerSpec("ours", ours, ours_env),
        "aiohttp": ServerSpec("aiohttp", [peer_python, PEERS / "aiohttp_server.py", *peer_args]),
        "websockets": ServerSpec("websockets", [peer_python, PEERS / "websockets_server.py"]),
        "waitress": ServerSpec("waitress", [peer_python, PEERS / "waitress_server.py", *peer_args]),
        "sse-starlette": ServerSpec("sse-starlette", [peer_python, PEERS / "sse_starlette_server.py"]),
    }
    if setup.chat_src:
        chat_env = {
            **ours_env,
            "PYTHONPATH": str(setup.chat_src),
            # Posts are limited per connection and per address (by default a burst of 20, then 5 a
            # second), and every bench socket comes from 127.0.0.1: the bench measures fan-out, not
            # the limiter, so it lifts the limit rather than depend on how few posts it makes.
            ENV_PREFIX + "CHAT_POST_RATE": "1000000",
            ENV_PREFIX + "CHAT_POST_BURST": "1000000",
        }
        specs["ours (chat)"] = ServerSpec("ours (chat)", ours, chat_env)
    return specs


# The load client


def run_client(server: RunningServer, mode: str, limit: float, **options) -> dict:
    argv = ["node", str(CLIENT), "--mode", mode, "--port", str(server.port)]
    argv += ["--server-pid", str(server.process.pid)]
    argv += ["--clk-tck", str(os.sysconf("SC_CLK_TCK"))]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False:
            argv += [flag, str(value)]
    try:
        result = subprocess.run(pin(1) + argv, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"errors": -1, "failure": f"load client ran over {limit:.0f} s"}
    lines = result.stdout.strip().splitlines()
    if not lines:
        return {"errors": -1, "failure": f"load client failed: {result.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


# Scenarios: each returns rows {"scenario", "case", "server", "run", metrics...}


@dataclass
class Plan:
    runs: int
    stream_counts: tuple[int, ...]
    threaded_count: int
    echo_conns: tuple[int, ...]
    echo_seconds: float
    large_conns: int
    idle_conns: int
    broadcast_counts: tuple[int, ...]
    sse_clients: int

    @property
    def more_runs(self) -> int:
        """Runs for the figures that swing most from run to run (echoes, broadcasts)."""
        return self.runs + 2 if self.runs > 1 else 1  # one run asked for (--quick): one run


FULL = Plan(3, (1000, 5000, 10000), 1000, (100, 1000), 2.5, 10, 5000, (1000, 5000), 10000)
QUICK = Plan(1, (500, 2000), 300, (50, 300), 1.5, 4, 1000, (300,), 1000)


class Bench:
    def __init__(self, plan: Plan, specs: dict[str, ServerSpec], setup: Setup) -> None:
        self.plan = plan
        self.specs = specs
        self.setup = setup
        self.rows: list[dict] = []
        self.notes: list[str] = []

    def measure(self, scenario: str, case: str, names: list[str], body, runs: int | None = None) -> None:
        """Run `body(server)` on a fresh server of each name, `runs` times, interleaved."""
        for run in range(runs or self.plan.runs):
            for name in names:
                try:
                    server = RunningServer(self.specs[name])
                except RuntimeError as error:
                    metrics = {"errors": -1, "failure": str(error).splitlines()[0]}
                else:
                    try:
                        metrics = body(server, name)
                        metrics["peakRssMiB"] = server.peak_rss_kib() / 1024
                    finally:
                        server.stop()
                row = {"scenario": scenario, "case": case, "server": name, "run": run + 1}
                row.update(metrics)
                self.rows.append(row)
                summary = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
                log(f"{scenario} {case} {name} run {run + 1}: {compact(summary)}")

    def streams(self, path: str, scenario: str, expect: str) -> None:
        for count in self.plan.stream_counts:

            def body(server, name, count=count):
                return run_client(server, "streams", 120, conns=count, path=path, expect=expect, timeout=60)

            self.measure(scenario, f"{count:,} concurrent", ["ours", "aiohttp"], body)
        count = self.plan.threaded_count

        def threaded(server, name):
            cutoff = THREADED_CUTOFF if name == "waitress" else 60
            result = run_client(server, "streams", cutoff + 30, conns=count, path=path, expect=expect, timeout=cutoff)
            if result.get("ok", 0) < count and name == "waitress":
                # Cut off: project the wall time from the rate at which it finished them.
                done = max(result.get("ok", 0), 1)
                result["projectedSeconds"] = count / done * cutoff
            return result

        self.measure(scenario, f"{count:,} concurrent vs threaded", ["ours", "waitress"], threaded)

    def echo(self) -> None:
        names = ["ours", "aiohttp", "websockets"]
        for conns in self.plan.echo_conns:

            def body(server, name, conns=conns):
                return run_client(
                    server, "echo", 120, conns=conns, size=32, warmup=1, duration=self.plan.echo_seconds, timeout=60
                )

            # Echoes and broadcasts swing most from run to run on a shared VM: two more runs.
            self.measure("echo", f"{conns:,} connections, 32 B text", names, body, runs=self.plan.more_runs)

    def large(self) -> None:
        names = ["ours", "aiohttp", "websockets"]
        for binary in (False, True):

            def body(server, name, binary=binary):
                return run_client(
                    server,
                    "echo",
                    120,
                    conns=self.plan.large_conns,
                    size=65536,
                    warmup=1,
                    duration=self.plan.echo_seconds,
                    timeout=60,
                    binary=binary,
                )

            kind = "binary" if binary else "text"
            case = f"64 KiB {kind}, {self.plan.large_conns} connections"
            self.measure("large", case, names, body, runs=self.plan.more_runs)

    def idle(self) -> None:
        conns = self.plan.idle_conns

        def body(server, name):
            return run_client(server, "idle", 120, conns=conns, settle=IDLE_SETTLE, timeout=60)

        self.measure("idle", f"{conns:,} idle WebSockets", ["ours", "aiohttp", "websockets"], body)
        if not self.chat_baked("Idle chat subscriber memory (scenario 5)"):
            return

        def subscribers(server, name):
            # Each joins one room and waits: none posts, since a post would go to every socket.
            return run_client(
                server, "idle", 120, conns=conns, path=CHAT_IDLE_PATH, no_echo=True, settle=IDLE_SETTLE, timeout=60
            )

        self.measure("idle-chat", f"{conns:,} idle chat subscribers", ["ours (chat)", "aiohttp"], subscribers)

    def chat_baked(self, skipped: str) -> bool:
        """Whether the chat bake is there; if not, the report says that `skipped` was skipped."""
        if self.setup.chat_src is None:
            self.notes.append(
                f"{skipped} was skipped: the project with the chat feature could not be baked "
                "(see the log of `make bench`)."
            )
        return self.setup.chat_src is not None

    def broadcast(self) -> None:
        if not self.chat_baked("Broadcast fan-out (scenario 6)"):
            return
        for count in self.plan.broadcast_counts:

            def body(server, name, count=count):
                # The same protocol on both: {"text": ...} in, the stored message out as JSON.
                # 20 posts per run: at 1,000 sockets one post takes about 15 ms, mostly the load
                # client reading, and the median of 5 moved by a quarter from run to run.
                return run_client(server, "broadcast", 180, conns=count, path="/chat/bench/ws", messages=20, timeout=20)

            names = ["ours (chat)", "aiohttp"]
            self.measure("broadcast", f"{count:,} sockets", names, body, runs=self.plan.more_runs)

    def sse(self) -> None:
        if not self.chat_baked("SSE fan-out (scenario 7)"):
            return
        count = self.plan.sse_clients

        def body(server, name):
            # The same contract on both: GET /chat/<room>/events, POST /chat/<room> with {"text": ...}.
            return run_client(
                server, "sse", 180, conns=count, path="/chat/bench/events", post_path="/chat/bench", timeout=30
            )

        self.measure("sse", f"{count:,} clients", ["ours (chat)", "sse-starlette"], body)


def compact(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


# The report


def median_of(rows: list[dict], scenario: str, case: str, server: str, key: str):
    values = [
        row[key]
        for row in rows
        if (row["scenario"], row["case"], row["server"]) == (scenario, case, server)
        and isinstance(row.get(key), int | float)
    ]
    return statistics.median(values) if values else None


def sum_of(rows, scenario, case, server, key) -> int:
    return sum(
        row.get(key, 0) or 0
        for row in rows
        if (row["scenario"], row["case"], row["server"]) == (scenario, case, server)
    )


def cases(rows: list[dict], scenario: str) -> list[str]:
    return list(dict.fromkeys(row["case"] for row in rows if row["scenario"] == scenario))


def servers(rows: list[dict], scenario: str, case: str) -> list[str]:
    return list(dict.fromkeys(row["server"] for row in rows if row["scenario"] == scenario and row["case"] == case))


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def ratio(ours, peer, higher_is_better: bool) -> float | None:
    if ours is None or peer is None or ours == 0 or peer == 0:
        return None
    return ours / peer if higher_is_better else peer / ours


@dataclass
class Target:
    label: str
    scenario: str
    case: str
    peer: str
    key: str
    higher_is_better: bool
    goal: float
    ours: str = "ours"


def targets(plan: Plan) -> list[Target]:
    found = []
    for conns in plan.echo_conns:
        found.append(
            Target(
                f"Echo 32 B, {conns:,} connections: msgs/s",
                "echo",
                f"{conns:,} connections, 32 B text",
                "aiohttp",
                "msgsPerSec",
                True,
                1.1,
            )
        )
    for kind in ("text", "binary"):
        found.append(
            Target(
                f"64 KiB {kind}: msgs/s",
                "large",
                f"64 KiB {kind}, {plan.large_conns} connections",
                "aiohttp",
                "msgsPerSec",
                True,
                1.0,
            )
        )
    found.append(
        Target(
            "Idle WebSocket: KiB per connection",
            "idle",
            f"{plan.idle_conns:,} idle WebSockets",
            "aiohttp",
            "kibPerConn",
            False,
            1.0,
        )
    )
    found.append(
        Target(
            "Idle chat subscriber: KiB per connection",
            "idle-chat",
            f"{plan.idle_conns:,} idle chat subscribers",
            "aiohttp",
            "kibPerConn",
            False,
            1.0,
            "ours (chat)",
        )
    )
    for scenario, what in (("streams", "Streams"), ("fetch", "Queue fetch")):
        middle = plan.stream_counts[len(plan.stream_counts) // 2]
        found.append(
            Target(
                f"{what}, {middle:,} concurrent: wall time",
                scenario,
                f"{middle:,} concurrent",
                "aiohttp",
                "seconds",
                False,
                1.0,
            )
        )
        if scenario == "streams":
            most = max(plan.stream_counts)
            found.append(
                Target(
                    f"{what}, {most:,} concurrent: errors",
                    scenario,
                    f"{most:,} concurrent",
                    "aiohttp",
                    "errors",
                    False,
                    0,
                )
            )
        found.append(
            Target(
                f"{what}, {plan.threaded_count:,} concurrent: vs threaded",
                scenario,
                f"{plan.threaded_count:,} concurrent vs threaded",
                "waitress",
                "seconds",
                False,
                20.0,
            )
        )
    for count in plan.broadcast_counts:
        found.append(
            Target(
                f"Broadcast fan-out, {count:,} sockets: time",
                "broadcast",
                f"{count:,} sockets",
                "aiohttp",
                "fanoutP50Ms",
                False,
                1.0,
                "ours (chat)",
            )
        )
    clients = f"{plan.sse_clients:,} clients"
    found += [
        Target(f"SSE fan-out, {clients}: time", "sse", clients, "sse-starlette", "fanoutMs", False, 1.0, "ours (chat)"),
        Target("SSE memory per client", "sse", clients, "sse-starlette", "kibPerClient", False, 1.0, "ours (chat)"),
        Target(f"SSE fan-out, {clients}: errors", "sse", clients, "sse-starlette", "errors", False, 0, "ours (chat)"),
    ]
    return found


def target_row(rows: list[dict], target: Target) -> str:
    """A line of the targets table: the ratio against its goal, or (key "errors") a count that must be 0."""
    if target.key == "errors":
        ours, peer = (sum_of(rows, target.scenario, target.case, name, "errors") for name in (target.ours, target.peer))
        return f"| {target.label} ({target.peer}) | {ours} | {peer} | – | 0 | {'yes' if ours == 0 else '**no**'} |"
    ours = target_value(rows, target, target.ours)
    peer = target_value(rows, target, target.peer)
    r = ratio(ours, peer, target.higher_is_better)
    met = "–" if r is None else ("yes" if r >= target.goal else "**no**")
    projected = target.peer == "waitress" and median_of(
        rows, target.scenario, target.case, "waitress", "projectedSeconds"
    )
    return (
        f"| {target.label} ({target.peer}) | {fmt(ours)} | {'>' if projected else ''}{fmt(peer)} | "
        f"{fmt(r)}x | {target.goal:g}x | {met} |"
    )


def target_value(rows, target: Target, server: str):
    value = median_of(rows, target.scenario, target.case, server, target.key)
    if server == "waitress":
        projected = median_of(rows, target.scenario, target.case, server, "projectedSeconds")
        value = projected if projected is not None else value
    return value


def report(rows: list[dict], plan: Plan, setup: Setup, notes: list[str], took: float) -> str:
    info = machine()
    v = setup.versions
    unmask = v["websockets (ours)"]
    unmask = "no websockets (pure-Python unmask)" if unmask == "missing" else f"websockets {unmask} (its C unmask)"
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (bench/run.py) on {datetime.date.today().isoformat()}, in "
        f"{took / 60:.1f} minutes. All figures come from one run on one machine, the medians of "
        f"{plan.runs} runs each ({plan.more_runs} for the echoes and broadcasts, whose figures swing most), with a "
        "fresh server per run. They "
        "compare servers measured side by side in the same run; other work may have shared the machine, which "
        "moves absolute figures more than ratios. On this VM, back-to-back runs of the same server at 100 "
        "connections differed by up to 2x in msgs/s (and so in CPU per message): read the medians with that "
        "in mind.",
        "",
        f"- Machine: {info['cpu']}, {info['memory']}; {info['os']}.",
        "- Server pinned to CPU 0, load client to CPU 1 (taskset). The load client is Node "
        "(bench/loadclient.mjs, raw sockets); its own CPU use is shown beside each figure.",
        f"- Ours: the default bake installed with its dependencies, gevent {v['gevent']}, greenlet "
        f"{v['greenlet']}, bottle {v['bottle']}, gevent-websocket {v['gevent-websocket']}, {unmask}, "
        f"Python {v['python']}, log level WARNING (no access log).",
        f"- Peers: aiohttp {v['aiohttp']} (default asyncio loop, no access log), websockets "
        f"{v['websockets']}, waitress {v['waitress']} (its defaults: 4 threads), sse-starlette "
        f"{v['sse-starlette']} on uvicorn {v['uvicorn']} (h11, asyncio loop, no access log). Node {v['node']}.",
        "- Same work everywhere: /stream sends START, MIDDLE and END 1 s apart; /fetch three "
        "chunks 1 s apart from a worker through a bounded queue; WebSocket echo with pings "
        "every 20 s and a 1 MiB message limit; event streams with a heartbeat every 15 s.",
        "",
        "## Targets",
        "",
        "| Target | Ours | Peer | Ratio | Goal | Met |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    lines += [target_row(rows, target) for target in targets(plan) if cases(rows, target.scenario)]
    busiest = max(
        (row.get("clientCpuPercent", 0) for row in rows if isinstance(row.get("clientCpuPercent"), int | float)),
        default=None,
    )
    lines += [
        "",
        'Ratios read "how many times better ours is": throughput ours/peer, time and memory peer/ours.',
    ]
    if busiest is not None:
        lines += [
            "",
            f"The load client used at most {busiest:.0f}% of its CPU in a measurement window (WebSocket echo); "
            "at 100% it would be the bottleneck, and figures near that are a floor for the server.",
        ]
    server_share = [row["serverCpuPercent"] for row in rows if isinstance(row.get("serverCpuPercent"), int | float)]
    if server_share:
        lines += [
            "",
            f"Each server got {min(server_share):.0f}% to {max(server_share):.0f}% of its CPU during the echo windows; "
            "below 100%, other work on the machine had part of it, and the server CPU per message says more "
            "than msgs/s.",
        ]
    if (BENCH / "PROFILES.md").exists():
        lines += ["", "What is in the way of the targets that are missed: [PROFILES.md](PROFILES.md)."]
    for stream_scenario, title in (("streams", "1. Concurrent streams"), ("fetch", "2. Concurrent queue fetches")):
        lines += [
            "",
            f"## {title} (GET /{stream_scenario.replace('streams', 'stream')}, 2 s each)",
            "",
            "| Case | Server | Wall time (s) | Errors | Server peak RSS (MiB) | Client CPU (s) | Ours vs this |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for case in cases(rows, stream_scenario):
            base = median_of(rows, stream_scenario, case, "ours", "seconds")
            for name in servers(rows, stream_scenario, case):
                seconds = median_of(rows, stream_scenario, case, name, "seconds")
                projected = median_of(rows, stream_scenario, case, name, "projectedSeconds")
                shown = fmt(seconds)
                if projected is not None:
                    ok = median_of(rows, stream_scenario, case, name, "ok")
                    shown = f"cut off at {THREADED_CUTOFF:g} s with {fmt(ok)} done; ~{fmt(projected)} projected"
                    seconds = projected
                errors = sum_of(rows, stream_scenario, case, name, "errors")
                if projected is not None:
                    errors = "(unfinished)"
                lines.append(
                    f"| {case} | {name} | {shown} | {errors} | "
                    f"{fmt(median_of(rows, stream_scenario, case, name, 'peakRssMiB'))} | "
                    f"{fmt(median_of(rows, stream_scenario, case, name, 'clientCpuSeconds'))} | "
                    f"{'' if name == 'ours' else fmt(ratio(base, seconds, False)) + 'x'} |"
                )
    lines += [
        "",
        "## 3. WebSocket echo, small messages",
        "",
        "Each connection sends a 32-byte text message, waits for the echo, sends the next.",
        "",
        "| Case | Server | msgs/s | RTT p50 (ms) | RTT p99 (ms) | Server CPU µs/msg | "
        "Errors | Client CPU | Ours vs this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += echo_rows(rows, "echo", with_mib=False)
    lines += [
        "",
        "## 4. WebSocket echo, 64 KiB messages",
        "",
        "Text messages are mostly ASCII with some 2- and 3-byte characters.",
        "",
        "| Case | Server | msgs/s | MiB/s | RTT p50 (ms) | RTT p99 (ms) | "
        "Server CPU µs/msg | Errors | Client CPU | Ours vs this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += echo_rows(rows, "large", with_mib=True)
    lines += [
        "",
        "## 5. Idle WebSocket memory",
        "",
        "Server RSS after the sockets are open and each has echoed one message, less RSS "
        "before (after a warm-up of 50 sockets), per socket.",
    ]
    if cases(rows, "idle-chat"):
        lines[-1] += (
            f" Chat subscribers join `{CHAT_IDLE_PATH}`, an empty room, and only wait: none posts (a post would go "
            "to them all), a message that reaches one counts as an error, and RSS is read "
            f"{IDLE_SETTLE:g} s after the last one has its 101."
        )
    lines += [
        "",
        "| Case | Server | KiB per connection | RSS before (MiB) | RSS after (MiB) | Errors | Ours vs this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += idle_rows(rows, "idle") + idle_rows(rows, "idle-chat", ours="ours (chat)")
    lines += ["", "## 6. Broadcast fan-out", ""]
    if cases(rows, "broadcast"):
        lines += [
            "One socket posts a chat message; the time until every socket has it.",
            "",
            "| Case | Server | Fan-out p50 (ms) | Fan-out max (ms) | Errors | Ours vs this |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        lines += comparison_rows(
            rows,
            "broadcast",
            "fanoutP50Ms",
            False,
            lambda case, name: [
                fmt(median_of(rows, "broadcast", case, name, "fanoutP50Ms")),
                fmt(median_of(rows, "broadcast", case, name, "fanoutMaxMs")),
                str(sum_of(rows, "broadcast", case, name, "errors")),
            ],
            ours="ours (chat)",
        )
    lines += ["", "## 7. SSE fan-out", ""]
    if cases(rows, "sse"):
        lines += [
            "Each client holds `GET /chat/bench/events` open, subscribed once its headers and first bytes have "
            "come; one `POST /chat/bench` on another connection, and the time until the last client (and the "
            "median one) has the event. Memory: server RSS once all have subscribed, less RSS before (after a "
            "warm-up of 50 clients), per client.",
            "",
            "| Case | Server | Last client (ms) | Median client (ms) | Server CPU (ms) | KiB per client | "
            "RSS before (MiB) | RSS after (MiB) | Errors | Time: ours vs this | Memory: ours vs this |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]

        def sse_cells(case: str, name: str) -> list[str]:
            def median(key: str):
                return median_of(rows, "sse", case, name, key)

            return [
                fmt(median("fanoutMs")),
                fmt(median("fanoutMedianMs")),
                fmt(median("serverCpuMs")),
                fmt(median("kibPerClient")),
                fmt((median("baselineKiB") or 0) / 1024),
                fmt((median("heldKiB") or 0) / 1024),
                str(sum_of(rows, "sse", case, name, "errors")),
            ]

        lines += comparison_rows(
            rows, "sse", "fanoutMs", False, sse_cells, ours="ours (chat)", more=(("kibPerClient", False),)
        )
    lines += [f"- {note}" for note in notes]
    failures = [row for row in rows if row.get("failure")]
    if failures:
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- {row['scenario']} {row['case']} {row['server']} run {row['run']}: {row['failure']}" for row in failures
        ]
    lines += ["", "![Results](results.png)", ""]
    return "\n".join(lines)


def comparison_rows(
    rows, scenario: str, key: str, higher_is_better: bool, cells, ours: str = "ours", more: tuple = ()
) -> list[str]:
    """A table row per case and server: the case, the server, `cells(case, server)`, then how
    many times better `ours` is on `key`, and on each (key, higher_is_better) of `more` (left
    empty on our own rows)."""

    def versus(case: str, name: str, key: str, higher_is_better: bool) -> str:
        if name.startswith("ours"):
            return ""
        base = median_of(rows, scenario, case, ours, key)
        return fmt(ratio(base, median_of(rows, scenario, case, name, key), higher_is_better)) + "x"

    out = []
    for case in cases(rows, scenario):
        for name in servers(rows, scenario, case):
            ratios = [versus(case, name, *measure) for measure in ((key, higher_is_better), *more)]
            out.append("| " + " | ".join([case, name, *cells(case, name), *ratios]) + " |")
    return out


def idle_rows(rows: list[dict], scenario: str, ours: str = "ours") -> list[str]:
    def cells(case: str, name: str) -> list[str]:
        def median(key: str):
            return median_of(rows, scenario, case, name, key)

        return [
            fmt(median("kibPerConn")),
            fmt((median("baselineKiB") or 0) / 1024),
            fmt((median("heldKiB") or 0) / 1024),
            str(sum_of(rows, scenario, case, name, "errors")),
        ]

    return comparison_rows(rows, scenario, "kibPerConn", False, cells, ours=ours)


def echo_rows(rows: list[dict], scenario: str, with_mib: bool) -> list[str]:
    def cells(case: str, name: str) -> list[str]:
        def median(key: str):
            return median_of(rows, scenario, case, name, key)

        return [
            fmt(median("msgsPerSec")),
            *([fmt(median("mibPerSec"))] if with_mib else []),
            fmt(median("rttP50Ms")),
            fmt(median("rttP99Ms")),
            fmt(median("serverCpuUsPerMsg")),
            str(sum_of(rows, scenario, case, name, "errors")),
            fmt(median("clientCpuPercent"), 2) + "%",
        ]

    return comparison_rows(rows, scenario, "msgsPerSec", True, cells)


def chart(rows: list[dict], plan: Plan, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "ours": "#2a7ab9",
        "aiohttp": "#e08a2c",
        "websockets": "#6a9f3a",
        "waitress": "#b04a4a",
        "ours (chat)": "#2a7ab9",
        "sse-starlette": "#8a5fb0",
    }
    panels = [
        ("echo", "msgsPerSec", "WebSocket echo, 32 B: msgs/s (higher is better)"),
        ("large", "msgsPerSec", "WebSocket echo, 64 KiB: msgs/s (higher is better)"),
        ("idle", "kibPerConn", "Idle WebSocket: KiB per connection (lower is better)"),
        ("idle-chat", "kibPerConn", "Idle chat subscriber: KiB per connection (lower is better)"),
        ("streams", "seconds", "2 s streams: wall time, s (lower is better)"),
        ("fetch", "seconds", "2 s queue fetches: wall time, s (lower is better)"),
        ("broadcast", "fanoutP50Ms", "Chat broadcast: ms until every socket has a message (lower is better)"),
        ("sse", "fanoutMs", "SSE fan-out: ms until the last client has the event (lower is better)"),
        ("sse", "kibPerClient", "SSE: server KiB per subscribed client (lower is better)"),
    ]
    panels = [panel for panel in panels if cases(rows, panel[0])]
    if not panels:
        return
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)), squeeze=False)
    axes = axes[:, 0]
    for axis, (scenario, key, title) in zip(axes, panels, strict=True):
        labels = [c for c in cases(rows, scenario) if "threaded" not in c]
        names = list(
            dict.fromkeys(row["server"] for row in rows if row["scenario"] == scenario and row["case"] in labels)
        )
        width = 0.8 / max(1, len(names))
        for index, name in enumerate(names):
            values = [median_of(rows, scenario, case, name, key) or 0 for case in labels]
            positions = [i + (index - (len(names) - 1) / 2) * width for i in range(len(labels))]
            bars = axis.bar(positions, values, width, label=name, color=colors.get(name))
            axis.bar_label(bars, labels=[fmt(value) for value in values], fontsize=7)
        axis.set_xticks(range(len(labels)), labels, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        axis.margins(y=0.15)
    figure.suptitle(f"Generated gevent server vs peers (median of {plan.runs} runs)", fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one run each")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3)")
    parser.add_argument("--only", help="comma-separated: streams,fetch,echo,large,idle,broadcast,sse")
    parser.add_argument("--out", type=Path, default=BENCH, help="where RESULTS.md etc. go")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = Plan(**{**plan.__dict__, "runs": args.runs})
    chosen = (args.only or "streams,fetch,echo,large,idle,broadcast,sse").split(",")
    if not shutil.which("node"):
        sys.exit("bench needs Node.js 18 or later for its load client (bench/loadclient.mjs)")

    started = time.monotonic()
    # Every connection is a file descriptor, on both ends: servers and client inherit this.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    most = max(*plan.stream_counts, plan.sse_clients)
    if hard < most + 1000:
        log(f"warning: the open-file limit ({hard}) is low for {most} connections; raise `ulimit -Hn`")
    setup = prepare()
    specs = server_specs(setup, sys.executable)
    bench = Bench(plan, specs, setup)
    steps = {
        "streams": lambda: bench.streams("/stream", "streams", "END"),
        "fetch": lambda: bench.streams("/fetch", "fetch", f"chunk {FETCH_CHUNKS} of"),
        "echo": bench.echo,
        "large": bench.large,
        "idle": bench.idle,
        "broadcast": bench.broadcast,
        "sse": bench.sse,
    }
    for name in chosen:
        log(f"scenario: {name}")
        steps[name]()
    took = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {"plan": plan.__dict__, "versions": setup.versions, "machine": machine(), "rows": bench.rows}, indent=1
        )
    )
    chart(bench.rows, plan, args.out / "results.png")
    (args.out / "RESULTS.md").write_text(report(bench.rows, plan, setup, bench.notes, took))
    log(f"done in {took / 60:.1f} min: {args.out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
