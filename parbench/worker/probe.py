"""What the controller needs to know about a node before it pushes: run as
``python -c "<this file's source>" WORKDIR FILE...``, so it works before anything is
installed there. Prints one JSON object. Stdlib only, Python 3.9+.

First it checks that parbench may use WORKDIR: a directory of this user that no one else
may write to, below folders no one else may swap (OpenSSH's StrictModes rule, else
another local user could plant modules that run as this one), and new or empty, one it
marked (``.parbench-workdir``), or one holding its own runtime (made before the marker
existed). Otherwise it says why on stderr and exits with ``REFUSED``, having touched
nothing. On a Python the worker can run on, it then claims WORKDIR (made only if absent,
judged again once made, then the marker, new folders private to this user). The facts
include what tells one machine and one directory apart (``machine``, ``workdir_id``), so
the controller can see a machine listed twice.

After the facts it answers each line on stdin with this machine's clock, until stdin
ends: the controller measures the clock offset over the same session (one remote
process per node for the whole push check). A line ``lock REQUEST`` takes the workdir's
lock (worker/lock.py's file) before push changes anything in the workdir. Once the node
is up to date, the line ``agent`` makes it exec the workdir's ``python -m worker agent``
in its place, which answers the controller's lock requests for the rest of its command.
No f-strings: an old Python must still get as far as reporting its version.
"""

import contextlib
import hashlib
import json
import os
import platform
import shlex
import socket
import stat
import sys
import time

# runs as `python -c` source, so it cannot import: its copies of worker/layout.py's
# PROBE_COPIES, worker/protocol/'s and worker/layout.py's (tests/unit/test_session_lines.py
# checks them equal)
MARKER = ".parbench-workdir"
RUNTIME = os.path.join("venv", ".parbench-runtime")
PYTHON = os.path.join("venv", "bin", "python")
REFUSED = 3
#: the oldest Python the worker runs on (controller/nodes/push.py's MIN_PYTHON): an older one
#: only reports, the workdir is left as it is
CLAIMS_FROM = (3, 9)
#: what the workdir holds: claimed (made) before the facts are taken
FOLDERS = ("worker", "data", "wheels", "runs")


def _sha256(path):
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _read(path):
    try:
        with open(path) as stream:
            return stream.read().strip()
    except OSError:
        return None


def _user(uid):
    """The name of user ``uid``, or "uid N" when it has none."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return "uid " + str(uid)


def _exposed(workdir):
    """Why another local user could change what is in ``workdir`` (a directory), or None.

    It (and the link, if it is one) must belong to this user and be writable by no one else.
    """
    me = os.getuid()
    info = os.stat(workdir)
    mode = format(stat.S_IMODE(info.st_mode), "04o")
    owner = [uid for uid in (os.lstat(workdir).st_uid, info.st_uid) if uid != me]
    risk = ": they could plant code there that runs as you; "
    if owner:
        whose = _user(owner[0]) + " (mode " + mode + "), not to you (" + _user(me) + ")"
        fix = "remove it or choose a workdir of your own"
        return "workdir " + workdir + " belongs to " + whose + risk + fix
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        whose = " (owner " + _user(me) + ", mode " + mode + ")"
        fix = "run chmod go-w on it or choose another workdir"
        return "workdir " + workdir + whose + " is writable by group or others" + risk + fix
    return None


def _home():
    """This user's home directory, resolved (where OpenSSH's ``safe_path`` stops), or None."""
    try:
        import pwd

        return os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        return None


def _steps(path):
    """(folder, the entry below it on the way to ``path``), from ``path``'s parent up to /."""
    steps = []
    below = path
    folder = os.path.dirname(below)
    while folder != below:
        steps.append((folder, below))
        below, folder = folder, os.path.dirname(folder)
    return steps


def _unsafe_folder(workdir, folder, info, below):
    """Why the folder ``folder`` (stat ``info``) above ``workdir`` lets another user swap
    what is below it (the entry ``below``), or None."""
    me = os.getuid()
    mode = format(stat.S_IMODE(info.st_mode), "04o")
    start = "workdir " + workdir + ": the folder " + folder + " above it "
    risk = ": they could swap what is below it and plant code that runs as you; "
    if info.st_uid not in (0, me):
        whose = "belongs to " + _user(info.st_uid) + " (mode " + mode + "), not to you or root"
        fix = "choose a workdir whose every folder above is yours or root's"
        return start + whose + risk + fix
    if not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    whose = "(owner " + _user(info.st_uid) + ", mode " + mode + ") is writable by group or others"
    if info.st_mode & stat.S_ISVTX:  # sticky, as /tmp: others cannot move what is yours
        try:
            entry = os.lstat(below)
        except OSError:
            return None  # not there yet: the claim makes it yours, and looks again
        if entry.st_uid in (0, me):
            return None
        whose += " and its entry " + below + " belongs to " + _user(entry.st_uid)
        fix = "choose a workdir below a folder of your own there"
        return start + whose + risk + fix
    fix = "run chmod go-w " + folder + " or choose another workdir"
    return start + whose + risk + fix


def unsafe_ancestor(workdir):
    """Why another local user could swap a folder above ``workdir``, or None.

    OpenSSH's StrictModes rule (``safe_path``): every folder above it, up to / or this
    user's home, belongs to root or this user and is not writable by group or others;
    except that a sticky folder (/tmp) may be, when the entry below it on the way is this
    user's (or root's: only they can move it there). Both the path as written and its
    resolved form (symlinks) are checked.
    """
    home = _home()
    path = os.path.abspath(workdir)
    for chain in (path, os.path.realpath(path)):
        for folder, below in _steps(chain):
            try:
                info = os.stat(folder)
            except OSError:
                continue  # not there yet: the claim makes it, then looks again
            why = _unsafe_folder(workdir, folder, info, below)
            if why is not None:
                return why
            if folder == home:
                break
    return None


def refusal(workdir):
    """Why parbench must not use ``workdir``, or None if it may."""
    if not os.path.lexists(workdir):
        return unsafe_ancestor(workdir)
    if not os.path.isdir(workdir):
        return "workdir " + workdir + " is not a directory; choose an empty or new directory"
    exposed = _exposed(workdir) or unsafe_ancestor(workdir)
    if exposed is not None:
        return exposed
    if os.path.isfile(os.path.join(workdir, MARKER)):
        return None
    if os.path.isfile(os.path.join(workdir, RUNTIME)) or not os.listdir(workdir):
        return None
    why = " is not empty and was not made by parbench (no " + MARKER + ")"
    return "workdir " + workdir + why + "; choose an empty or new directory"


def machine_id():
    """What tells this machine from others: its machine-id, else its hostname."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        found = _read(path)
        if found:
            return found
    return socket.gethostname()


def directory_id(path):
    """[st_dev, st_ino] of the directory ``path``, None while it does not exist."""
    if not os.path.isdir(path):
        return None
    info = os.stat(path)
    return [info.st_dev, info.st_ino]


def stamped(path):
    """The text of ``path``'s stamp and the file's size, mtime_ns and inode now (None
    for what is not there), for the controller to judge (worker/generate.py)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    found = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "inode": info.st_ino}
    return {"stamp": _read(path + ".stamp"), "file": found}


#: what marks a file argument as one to report the stamp of, not to hash
STAMPED = "stamped:"


def package_files(package):
    """The files below the folder ``package`` (none when it is absent), by their path
    there: ``agent.py``, ``protocol/lines.py``; compiled ones (``__pycache__``) left out."""
    found = []
    for folder, subfolders, names in os.walk(package):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        below = os.path.relpath(folder, package)
        found += [name if below == "." else below + "/" + name for name in names]
    return sorted(found)


def probe(workdir, files):
    package = os.path.join(workdir, "worker")
    hashed = [name for name in files if not name.startswith(STAMPED)]
    stamps = [name[len(STAMPED) :] for name in files if name.startswith(STAMPED)]
    return {
        "machine": machine_id(),
        "workdir_id": directory_id(workdir),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": list(sys.version_info[:3]),
        "hashes": {name: _sha256(os.path.join(workdir, name)) for name in hashed},
        "stamps": {name: stamped(os.path.join(workdir, name)) for name in stamps},
        "worker_files": package_files(package),
        "runtime": _read(os.path.join(workdir, RUNTIME)),
    }


def claim(workdir):
    """Make ``workdir`` parbench's: the marker before anything else, then its folders;
    what is new is private to this user, what exists keeps its mode. Why it may not after
    all, or None: the directory is made only if absent (``mkdir`` fails on one that is
    there), and one that appeared since the check, or a folder above it, is judged again."""
    os.umask(0o077)
    parent = os.path.dirname(os.path.abspath(workdir))
    os.makedirs(parent, exist_ok=True)  # the folders above: judged below, once all there
    with contextlib.suppress(FileExistsError):  # there before, or made since: judged below
        os.mkdir(workdir)
    reason = refusal(workdir)
    if reason is not None:
        return reason
    marker = os.path.join(workdir, MARKER)
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return "workdir " + workdir + ": " + MARKER + " is not a file; remove it"
    for name in FOLDERS:
        path = os.path.join(workdir, name)
        if not os.path.isdir(path):
            os.mkdir(path)
    return None


#: the lock file of a workdir (worker/layout.py's), the tags of a lock request and of its
#: reply (worker/protocol/lines.py's LockAsk, LockReply): this source cannot import them
LOCK_NAME = ".parbench-lock"
LOCK_ASK = "lock "
LOCK_REPLY = "parbench-lock"


def lock_file_state(path):
    """(content, age in seconds on this node's clock) of the lock file, None if none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as stream:
        return stream.read(), time.time() - os.fstat(fd).st_mtime


def create_lock_file(path, data):
    """Make the lock file with ``data`` only if there is none (O_EXCL); False if there is.
    The one maker of a workdir's lock file: worker/lock.py's calls it too."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    return True


def _token_of(raw):
    """The holder's token in a lock file's content; "" for an empty file, None unreadable."""
    if not raw.strip():
        return ""
    try:
        current = json.loads(raw.decode())
    except ValueError:
        return None
    token = current.get("token") if isinstance(current, dict) else None
    return token if isinstance(token, str) else None


def _take_over(path, token):
    """Remove the lock at ``path`` if its holder (still) has ``token`` ("": it is empty),
    as worker/lock.py does: moved aside under a name of its own (one rename: of two takers
    only one moves it), checked there, then deleted; anyone else's is put back where no
    file is. True when it was removed."""
    aside = path + ".aside-" + os.urandom(6).hex()
    try:
        os.rename(path, aside)  # a link planted there is moved, never followed
    except FileNotFoundError:
        return False
    found = lock_file_state(aside)
    if found is not None and _token_of(found[0]) == token:
        os.remove(aside)
        return True
    try:
        os.link(aside, path, follow_symlinks=False)  # another's: put back, keeping its age
    except FileExistsError:
        raise RuntimeError(
            "lock file " + path + " was moved aside to " + aside + " and could not be put"
            " back (another lock took its name meanwhile)"
        ) from None
    os.remove(aside)
    return False


def take_lock(workdir, request):
    """Hold ``workdir``'s lock for the holder of ``request`` (a lock request, as decoded
    JSON) before push changes anything there: the file made only if absent (O_EXCL), as
    worker/lock.py makes it. Another holder (or an empty file) is reported with its age;
    one the controller judged gone comes back in ``take_over`` (its token, "" for an empty
    file) and is taken over here, atomically, before anything in the workdir changes."""
    holder = request["holder"]
    take_over = request.get("take_over") or ()
    path = os.path.join(workdir, LOCK_NAME)
    data = json.dumps(holder, sort_keys=True).encode()
    for _ in range(3):  # a holder that leaves just now: look again
        if create_lock_file(path, data):
            return {"path": path, "held": True, "replaced": None}
        found = lock_file_state(path)
        if found is None:
            continue
        raw, age = found
        token = _token_of(raw)
        if token is None:
            return {
                "path": path,
                "held": False,
                "error": "lock file " + path + " cannot be read",
                "clear": "rm -f -- " + shlex.quote(path),
            }
        if token == holder["token"]:
            return {"path": path, "held": True, "holder": None, "age": age}
        if token in take_over:
            gone = json.loads(raw.decode()) if token else None
            if _take_over(path, token) and create_lock_file(path, data):
                if not token:
                    return {"path": path, "held": True, "cleared": "an empty lock file"}
                return {"path": path, "held": True, "replaced": gone}
            continue  # someone else moved it, or made theirs meanwhile: look again
        current = json.loads(raw.decode()) if token else None
        return {"path": path, "held": False, "holder": current, "age": age}
    raise RuntimeError("lock file " + path + " keeps changing; try again")


def answer_lock(workdir, text):
    """The reply line to the lock request ``text``: the workdir's lock only (the storage
    root's needs the worker)."""
    path = os.path.join(workdir, LOCK_NAME)
    try:
        request = json.loads(text)
        if request.get("action") != "acquire" or request.get("dst") is not None:
            raise ValueError("the probe only takes a workdir's lock")
        place = take_lock(workdir, request)
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError, TypeError) as exc:
        place = {"path": path, "held": False, "error": str(exc)}
    return LOCK_REPLY + " " + json.dumps({"workdir": place, "dst": None})


#: the line that makes the probe become the node's agent (worker/agent.py)
AGENT = "agent"


def become_agent(workdir):
    """Exec the workdir's worker as the node's agent on this same session; only returns
    (with why) when it cannot."""
    python = os.path.join(workdir, PYTHON)
    try:
        os.chdir(workdir)
        os.environ["PYTHONPATH"] = workdir
        os.execv(python, [python, "-m", "worker", "agent"])
    except OSError as exc:
        return "cannot start " + python + " -m worker agent: " + str(exc)


def answer_clock(lines, out, workdir=None):
    """Our clock, once per line read, until the lines end or one asks for the agent;
    ``lock REQUEST`` takes the workdir's lock (before push changes anything there)."""
    for line in lines:
        if line.strip() == AGENT and workdir is not None:
            out.write("parbench-probe: " + become_agent(workdir) + "\n")
        elif line.startswith(LOCK_ASK) and workdir is not None:
            out.write(answer_lock(workdir, line[len(LOCK_ASK) :]) + "\n")
        else:
            out.write(repr(time.time()) + "\n")
        out.flush()


if __name__ == "__main__":
    reason = refusal(sys.argv[1])
    if reason is not None:
        sys.stderr.write(reason + "\n")
        sys.exit(REFUSED)
    if sys.version_info[:2] >= CLAIMS_FROM:
        reason = claim(sys.argv[1])
        if reason is not None:
            sys.stderr.write(reason + "\n")
            sys.exit(REFUSED)
    sys.stdout.write(json.dumps(probe(sys.argv[1], sys.argv[2:])) + "\n")
    sys.stdout.flush()
    answer_clock(sys.stdin, sys.stdout, sys.argv[1])
