"""The pre-push probe: what it reports about a node's work directory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from worker import probe

PROBE = Path(probe.__file__)


def test_probe_reports_only_what_push_reads(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "a.py").write_text("x = 1\n")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".parbench-runtime").write_text("stamp\n")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.read_text(), str(tmp_path), "worker/a.py", "nope"],
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(done.stdout)
    assert set(facts) == {"hostname", "platform", "python", "hashes", "worker_files", "runtime"}
    assert facts["python"] == list(sys.version_info[:3])
    assert facts["hashes"] == {
        "worker/a.py": hashlib.sha256(b"x = 1\n").hexdigest(),
        "nope": None,
    }
    assert facts["worker_files"] == ["a.py"] and facts["runtime"] == "stamp"
