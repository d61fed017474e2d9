"""Autobahn|Testsuite (sections 1-7 and 9) against the default bake: every case OK or, where the
suite grades it so, informational. bench/autobahn/ says how the suite gets here (it needs Python
2.7, which it takes from Debian 11's packages on the first run)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

pytestmark = pytest.mark.skipif(
    not (shutil.which("apt-get") and KEYRING.exists() and shutil.which("gcc")),
    reason="the Autobahn suite is set up from Debian's packages: needs apt-get, Debian's keyring and gcc",
)


def test_every_protocol_case_passes(tmp_path):
    summary = tmp_path / "autobahn.md"
    command = [sys.executable, str(ROOT / "bench/autobahn/run.py"), "--require-ok", "--summary", str(summary)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = summary.read_text()
    verdicts = r"Behaviour: (\d+) OK, (\d+) NON-STRICT, (\d+) INFORMATIONAL, (\d+) FAILED, (\d+) UNIMPL"
    counts = re.search(verdicts, report)
    ok, non_strict, informational, failed, unimplemented = map(int, counts.groups())
    assert (non_strict, failed, unimplemented) == (0, 0, 0), report
    assert ok + informational == 300 and informational <= 3, report
