"""THE way a phase request is made, by the controller and by the by-hand CLI alike, and
the defaults of the settings a request carries. Part of the contract (worker/protocol/).
Stdlib only, Python 3.9+."""

from __future__ import annotations

import inspect
import posixpath
from typing import Any, Dict, Optional, Sequence

from .phases import COPY_PHASES, REFERENCE_PHASES
from .request import (
    NATIVE_BACKENDS,
    ClientTask,
    Measure,
    MetaWork,
    PhaseRequest,
    Reference,
    StorageConfig,
    meta_folder,
)
from .typed import _refuse


def phase_request(
    run_id: str,
    node: str,
    phase: str,
    storage: StorageConfig,
    clients: int,
    *,
    dst: Optional[str],
    local_dst: Optional[str],
    out: Optional[str],
    sources: Optional[Sequence[str]] = None,
    reference: Optional[Reference] = None,
    start: str = "now",
    start_at: Optional[float] = None,
    deadline: Optional[float] = None,
    controlled: bool = False,
    duration: Optional[float] = None,
    # the inventory's settings a request carries, named as there (``defaults.<name>``;
    # controller/run/settings.py declares them, with these defaults)
    chunk_size: int = 1024 * 1024,
    on_existing: str = "replace",
    latency: bool = True,
    series_interval: float = 1.0,
    meta_files: int = 100,
    meta_size: int = 0,
) -> PhaseRequest:
    """THE way a request is made, by the controller (controller/run/plan.py) and by the
    by-hand CLI alike: ``clients`` clients of ``node`` in ``phase``. Each client's path:
    read, the storage path in ``sources``; verify-read, its copy ``{local_dst}/{c}``
    (checked through a posix view of /); meta, ``{dst}/{node}/{c}.meta``; else
    ``{dst}/{node}/{c}``. The reference goes only to the phases that use it; a clean
    has no records file. RequestError when the result is not a valid request."""
    copies = [posixpath.join(local_dst, str(c)) if local_dst else None for c in range(clients)]
    if phase == "read":
        if sources is None or len(sources) != clients:
            _refuse("request.clients", f"a storage path for each of {clients} clients", sources)
        paths = list(sources)
    elif phase == "verify-read":  # the copies are local files: checked through a view of /
        paths = [p or "" for p in copies]
        storage = StorageConfig("posix", root="/", timeout=storage.timeout)
    elif phase == "meta" and dst is not None:
        paths = [meta_folder(dst, node, c) for c in range(clients)]
    else:
        paths = [posixpath.join(dst or "", node, str(c)) for c in range(clients)]
    with_copies = phase in COPY_PHASES
    return PhaseRequest(
        run_id=run_id,
        node=node,
        phase=phase,
        storage=storage,
        clients=tuple(
            ClientTask(c, path, copies[c] if with_copies else None) for c, path in enumerate(paths)
        ),
        dst=dst,
        local_dst=local_dst,
        # native: its read is told the files' size too (worker/native.py)
        reference=reference
        if phase in REFERENCE_PHASES or (storage.backend in NATIVE_BACKENDS and phase == "read")
        else None,
        chunk_size=chunk_size,
        on_existing=on_existing,
        start=start,
        start_at=start_at,
        deadline=deadline,
        controlled=controlled,
        out=None if phase == "clean" else out,
        measure=Measure(latency, series_interval),
        duration=duration,
        meta=MetaWork(meta_files, meta_size) if phase == "meta" else None,
    ).check()


#: the default of each setting a request carries (``phase_request``'s keywords)
REQUEST_DEFAULTS: Dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(phase_request).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
