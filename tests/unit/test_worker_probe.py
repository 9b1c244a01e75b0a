"""The pre-push probe: what it reports about a node's work directory."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller import push
from worker import generate, probe
from worker.protocol import ProbeFacts

PROBE = Path(probe.__file__)


def test_probe_reports_only_what_push_reads(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "a.py").write_text("x = 1\n")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".parbench-runtime").write_text("stamp\n")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.read_text(), str(tmp_path), "worker/a.py", "nope"],
        input="",  # no clock request
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(done.stdout)
    assert set(facts) == {
        "machine",
        "workdir_id",
        "hostname",
        "platform",
        "python",
        "hashes",
        "worker_files",
        "runtime",
        "stamps",
    }
    assert facts["machine"] == probe.machine_id()
    assert facts["workdir_id"] == [tmp_path.stat().st_dev, tmp_path.stat().st_ino]
    assert facts["python"] == list(sys.version_info[:3])
    assert facts["hashes"] == {
        "worker/a.py": hashlib.sha256(b"x = 1\n").hexdigest(),
        "nope": None,
    }
    assert facts["worker_files"] == ["a.py"] and facts["runtime"] == "stamp"


def test_the_probe_claims_a_new_workdir_then_answers_the_clock_until_stdin_ends(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "new" / "work"
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE.read_text(), str(workdir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    facts = ProbeFacts.from_json(proc.stdout.readline())
    # claimed before the facts were taken: marker, private folders, the new directory's id
    assert facts.workdir_id == (workdir.stat().st_dev, workdir.stat().st_ino)
    assert (workdir / probe.MARKER).is_file()
    assert sorted(p.name for p in workdir.iterdir() if p.is_dir()) == sorted(probe.FOLDERS)
    assert oct(workdir.stat().st_mode & 0o777) == oct(0o700)
    for _ in range(3):
        before = time.time()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert before <= float(proc.stdout.readline()) <= time.time()
    _, err = proc.communicate()  # stdin ends: so does the probe
    assert proc.returncode == 0 and err == ""


def test_the_probe_claims_from_the_python_the_worker_needs() -> None:
    assert probe.CLAIMS_FROM == push.MIN_PYTHON


def test_probe_of_a_new_workdir_has_no_directory_id(tmp_path: Path) -> None:
    assert probe.probe(str(tmp_path / "new"), [])["workdir_id"] is None


def test_machine_id_falls_back_to_the_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_read", lambda path: None)
    assert probe.machine_id() == socket.gethostname()
    monkeypatch.setattr(probe, "_read", lambda path: "" if path == "/etc/machine-id" else "abc")
    assert probe.machine_id() == "abc"  # /var/lib/dbus/machine-id, when /etc's is empty


@pytest.mark.parametrize(
    ("mode", "refused"),
    [(0o700, False), (0o755, False), (0o775, True), (0o757, True), (0o1777, True)],
)
def test_refuses_a_workdir_others_may_write(tmp_path: Path, mode: int, refused: bool) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / ".parbench-workdir").write_text("")
    workdir.chmod(mode)
    reason = probe.refusal(str(workdir))
    if not refused:
        assert reason is None
        return
    me = probe._user(os.getuid())
    assert reason == (
        f"workdir {workdir} (owner {me}, mode {mode & 0o7777:04o}) is writable by group or "
        "others: they could plant code there that runs as you; run chmod go-w on it or "
        "choose another workdir"
    )


def test_refuses_a_workdir_of_another_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/tmp/parbench-USER made (empty, 0777) by someone else before the first push."""
    workdir = tmp_path / "parbench-me"
    workdir.mkdir()
    workdir.chmod(0o777)
    owner = workdir.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)  # we are somebody else
    assert probe.refusal(str(workdir)) == (
        f"workdir {workdir} belongs to {probe._user(owner)} (mode 0777), not to you "
        f"({probe._user(owner + 1)}): they could plant code there that runs as you; "
        "remove it or choose a workdir of your own"
    )


def test_user_names_an_unknown_uid_by_number() -> None:
    assert probe._user(2**31 - 3) == f"uid {2**31 - 3}"


def test_probe_reports_a_stamped_file_for_the_controller_to_judge(tmp_path: Path) -> None:
    data = tmp_path / "data" / generate.file_name(5000)
    data.parent.mkdir()
    generate.materialise(str(data), 5000, generate.sha256(5000))
    asked = [probe.STAMPED + "data/" + data.name, probe.STAMPED + "data/none.bin"]
    facts = ProbeFacts.from_json(json.dumps(probe.probe(str(tmp_path), asked)))
    found = facts.stamps["data/" + data.name]
    assert found is not None and facts.stamps["data/none.bin"] is None
    assert generate.stamp_holds(found.stamp, found.file, generate.sha256(5000))
    assert not generate.stamp_holds(found.stamp, found.file, "0" * 64)  # another digest
    os.utime(data, ns=(1, 1))  # touched behind parbench's back: no longer vouched for
    again = probe.stamped(str(data))
    assert not generate.stamp_holds(again["stamp"], again["file"], generate.sha256(5000))
