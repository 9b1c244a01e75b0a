"""THE contract between the controller and the worker (with worker/results.py and
worker/layout.py): what a node is asked to do, the worker's exit codes, the probe's facts,
and every line on the node's session. One module a job; import from here
(``from worker.protocol import PhaseRequest``), the names are the package's:

    phases.py       THE phase table, and every list of phases derived from it
    request.py      the phase request (PhaseRequest and its parts), checked when loaded
    build.py        phase_request: THE way a request is made, and its settings' defaults
    codes.py        the worker's exit codes
    probefacts.py   what the probe tells about a node, and the constants it keeps copies of
    generated.py    the recipe of the reference data generated on the nodes
    lockrequest.py  the lock request a node's agent answers, and the lock's holder
    units.py        THE grammar of sizes (4K, 64KiB, 2MB) and durations (90s, 1m30s, 2h)
    typed.py        typed decoding of every field against its annotation; RequestError
    lines.py        the lines on a node's session: a typed message each, one encoder and
                    one decoder

Stdlib only, Python 3.9+: the worker runs on the nodes with this package.
"""

from __future__ import annotations

from .build import REQUEST_DEFAULTS, phase_request
from .codes import RECORDED_EXITS, ExitCode
from .generated import (
    DATA_GENERATOR,
    GENERATED_CHUNK,
    generated_chunks,
    generated_sha256,
    generated_stamp_holds,
)
from .lines import (
    AGENT_CLOCK,
    AGENT_DONE,
    AGENT_READY,
    AGENT_STARTED,
    BECOME_AGENT,
    CLOCK,
    GO,
    LOCK,
    LOCK_REPLY,
    PROBE_COPIES,
    PROGRESS,
    READY,
    RECORD,
    RUN,
    STDERR,
    STOP,
    AgentClock,
    AgentClockAsk,
    AgentDone,
    AgentReady,
    AgentStarted,
    BecomeAgent,
    Clock,
    ClockAsk,
    Go,
    LockAsk,
    LockReply,
    Message,
    MessageError,
    Progress,
    Ready,
    Record,
    RunAsk,
    Stderr,
    Stop,
    decode_clock,
    decode_line,
    decode_progress,
    encode_line,
    for_the_controller,
    is_record,
    kind,
    ready_in,
    told_records,
)
from .lockrequest import (
    EMPTY_LOCK_STALE,
    LOCK_ACTIONS,
    LOCK_SCHEMA,
    Holder,
    LockRequest,
)
from .phases import (
    BY_PHASE,
    COPY_PHASES,
    IO_PHASES,
    LATE_PHASES,
    PHASE_TABLE,
    PHASES,
    RECORDED_PHASES,
    REFERENCE_PHASES,
    TIMED_PHASES,
    VERIFIED,
    VERIFY_PHASES,
    Phase,
)
from .probefacts import (
    PROBE_REFUSED,
    PROBE_STAMPED,
    WORKDIR_MARKER,
    ProbeFacts,
    Stamped,
)
from .request import (
    BACKENDS,
    META_OPS,
    MIN_INTERVAL,
    NATIVE_BACKENDS,
    NODE_ID,
    ON_EXISTING,
    READ_TYPES,
    REQUEST_SCHEMA,
    RUN_ID,
    S3_ADDRESSING,
    S3_MAX_PARTS,
    S3_MIN_PART,
    START_MODES,
    WRITE_TYPES,
    ClientTask,
    Measure,
    MetaWork,
    PhaseRequest,
    Reference,
    StorageConfig,
    WorkdirClean,
    is_nth_of,
    load_request,
    meta_folder,
    nth_path,
    save_request,
)
from .typed import RequestError, decode
from .units import (
    DURATION_FORMAT,
    DURATION_LIKE,
    MAX_BYTES,
    SIZE_FORMAT,
    UnitError,
    looks_like_size,
    parse_duration,
    parse_size,
    print_bytes,
)
