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

from parbench.controller.nodes import push
from parbench.worker import generate, probe
from parbench.worker.protocol import ProbeFacts

PROBE = Path(probe.__file__)


def test_probe_reports_only_what_push_reads(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "a.py").write_text("x = 1\n")
    for compiled in ("worker/__pycache__", "worker/sub/__pycache__"):
        (tmp_path / compiled).mkdir(parents=True)
        (tmp_path / compiled / "a.cpython-39.pyc").write_bytes(b"")
    (tmp_path / "worker" / "sub" / "b.py").write_text("y = 2\n")  # a subpackage's module
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
    assert facts["worker_files"] == ["a.py", "sub/b.py"] and facts["runtime"] == "stamp"


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


#: a uid that is neither root nor the test's user (nobody, on most systems)
OTHER = 65534


def _made(path: Path, mode: int, owner: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, owner, -1)
    path.chmod(mode)
    return path


needs_root = pytest.mark.skipif(os.getuid() != 0, reason="gives a folder to another uid")


@needs_root
@pytest.mark.parametrize("exists", [True, False])
@pytest.mark.parametrize("mode", [0o755, 0o777, 0o1777])
def test_refuses_a_workdir_below_a_folder_another_user_owns(
    tmp_path: Path, exists: bool, mode: int
) -> None:
    """/tmp/parbench (someone else's) above /tmp/parbench/n0 (ours): they could swap n0."""
    shared = _made(tmp_path / "parbench", mode, OTHER)
    workdir = shared / "n0"
    if exists:
        _made(workdir, 0o700)
        (workdir / probe.MARKER).write_text("")
    assert probe.refusal(str(workdir)) == (
        f"workdir {workdir}: the folder {shared} above it belongs to {probe._user(OTHER)} "
        f"(mode {mode:04o}), not to you or root: they could swap what is below it and plant "
        "code that runs as you; choose a workdir whose every folder above is yours or root's"
    )


def test_refuses_a_workdir_below_a_folder_others_may_write(tmp_path: Path) -> None:
    shared = _made(tmp_path / "group", 0o775)
    workdir = _made(shared / "deeper" / "n0", 0o700)
    me = probe._user(os.getuid())
    assert probe.refusal(str(workdir)) == (
        f"workdir {workdir}: the folder {shared} above it (owner {me}, mode 0775) is writable "
        "by group or others: they could swap what is below it and plant code that runs as "
        f"you; run chmod go-w {shared} or choose another workdir"
    )


@needs_root
def test_a_sticky_folder_above_is_safe_only_with_an_entry_of_your_own_below(
    tmp_path: Path,
) -> None:
    sticky = _made(tmp_path / "tmp", 0o1777)  # as /tmp
    assert probe.refusal(str(sticky / "x" / "n0")) is None  # made by the claim, ours
    _made(sticky / "x", 0o755)
    assert probe.refusal(str(sticky / "x" / "n0")) is None
    theirs = _made(sticky / "y", 0o755, OTHER)
    refused = probe.refusal(str(theirs / "n0"))
    assert refused is not None and refused.startswith(
        f"workdir {theirs / 'n0'}: the folder {theirs} above it belongs to nobody"
    )
    # a link of theirs in the sticky folder, to a folder of ours: they could point it elsewhere
    mine = _made(tmp_path / "mine", 0o755)
    (sticky / "link").symlink_to(mine)
    os.lchown(sticky / "link", OTHER, -1)
    assert probe.refusal(str(sticky / "link" / "n0")) == (
        f"workdir {sticky / 'link' / 'n0'}: the folder {sticky} above it (owner root, mode 1777) "
        f"is writable by group or others and its entry {sticky / 'link'} belongs to nobody: "
        "they could swap what is below it and plant code that runs as you; choose a workdir "
        "below a folder of your own there"
    )


def test_a_link_to_a_folder_below_an_unsafe_one_is_refused(tmp_path: Path) -> None:
    """The path resolved is checked too: a link of ours to where others may write."""
    target = _made(tmp_path / "open", 0o777) / "mine"
    _made(target, 0o700)
    (tmp_path / "link").symlink_to(target)
    refused = probe.refusal(str(tmp_path / "link" / "n0"))
    assert refused is not None and f"the folder {tmp_path / 'open'} above it" in refused


def test_the_usual_layouts_pass(tmp_path: Path) -> None:
    import tempfile

    assert os.stat("/tmp").st_mode & 0o1777 == 0o1777  # sticky, writable by all
    shared = Path(tempfile.mkdtemp(prefix="parbench-", dir="/tmp"))
    try:
        assert probe.refusal(str(shared / "n0")) is None  # /tmp/x/n0: the committed layout
        assert probe.claim(str(shared / "n0")) is None
        assert probe.refusal(str(shared / "n0")) is None
    finally:
        import shutil

        shutil.rmtree(shared)
    assert probe.refusal(f"/tmp/parbench-{probe._user(os.getuid())}-absent") is None  # default
    assert probe.refusal(str(Path.home() / ".parbench-absent" / "n0")) is None  # a home dir
    assert probe.refusal(str(tmp_path / "work")) is None


@needs_root
def test_the_probe_refuses_a_swappable_workdir_and_touches_nothing(tmp_path: Path) -> None:
    shared = _made(tmp_path / "parbench", 0o777, OTHER)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.read_text(), str(shared / "n0")],
        input="", capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == probe.REFUSED and done.stdout == ""
    assert done.stderr.startswith(f"workdir {shared / 'n0'}: the folder {shared} above it ")
    assert list(shared.iterdir()) == []


@needs_root
def test_a_workdir_made_by_someone_else_after_the_check_is_not_claimed(tmp_path: Path) -> None:
    """The check found no workdir; another user makes it before the claim: not taken."""
    workdir = tmp_path / "n0"
    assert probe.refusal(str(workdir)) is None
    _made(workdir, 0o777, OTHER)  # the race, made to happen
    assert probe.claim(str(workdir)) == (
        f"workdir {workdir} belongs to nobody (mode 0777), not to you (root): they could "
        "plant code there that runs as you; remove it or choose a workdir of your own"
    )
    assert list(workdir.iterdir()) == []  # no marker, no folders


def test_the_claim_makes_the_workdir_only_if_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mkdir, not a look then a make: one made meanwhile is judged before the marker."""
    workdir = tmp_path / "n0"
    real_mkdir = os.mkdir

    def raced(path, mode=0o777):  # type: ignore[no-untyped-def]
        if str(path) == str(workdir):  # someone's folder of files appears just now
            real_mkdir(path, 0o700)
            (workdir / "theirs.txt").write_text("")
        return real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", raced)
    assert probe.claim(str(workdir)) == (
        f"workdir {workdir} is not empty and was not made by parbench (no .parbench-workdir); "
        "choose an empty or new directory"
    )
    assert sorted(p.name for p in workdir.iterdir()) == ["theirs.txt"]
