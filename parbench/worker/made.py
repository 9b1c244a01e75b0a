"""What a write or a read left: the tag (worker/storage.TAG) of each file, taken once the
node's clients are done, never on the timed path.

A write's files are tagged with one listing per storage folder (``{dst}/{nid}``: one call
for all its clients, whatever their file count); a read's copies with one ``lstat`` each
(local files). The tags go into the records (``made``), the controller hands them to
verify (``ClientTask.expect``), and verify tells this run's file from one that replaced it.
Stdlib and the worker only.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Dict, List, Optional

from .protocol import ClientTask, PhaseRequest, nth_path
from .results import ClientResult
from .storage import Storage, local_tag_of


def _listed(storage: Storage, folders: List[str]) -> Dict[str, Dict[str, str]]:
    return {folder: storage.tags(folder) for folder in folders}


def written(storage: Storage, tasks: Dict[int, ClientTask], results: List[ClientResult]) -> list:
    """The write records with the tag of each file their client completed ("" for one that
    is not there any more)."""
    folders = sorted({posixpath.dirname(task.path) for task in tasks.values()})
    listed = _listed(storage, folders)
    out = []
    for result in results:
        task = tasks.get(result.client)
        if task is None:
            out.append(result)
            continue
        folder = listed[posixpath.dirname(task.path)]
        names = (posixpath.basename(nth_path(task.path, k)) for k in range(result.files))
        out.append(replace(result, made=[folder.get(name, "") for name in names]))
    return out


def copied(tasks: Dict[int, ClientTask], results: List[ClientResult]) -> list:
    """The read records with the tag of each copy their client saved (one per file of its
    source; a duration that went round again leaves the last copy of each)."""
    out = []
    for result in results:
        task = tasks.get(result.client)
        local: Optional[str] = task.local_path if task is not None else None
        if task is None or local is None:
            out.append(result)
            continue
        copies = min(result.files, task.files)
        tags = [local_tag_of(nth_path(local, k)) or "" for k in range(copies)]
        out.append(replace(result, made=tags))
    return out


def tagged(request: PhaseRequest, storage: Optional[Storage], results: list) -> list:
    """The records of ``request``'s write or read with what they made; others as they are."""
    tasks = {task.client: task for task in request.clients}
    if request.phase == "write" and storage is not None:
        return written(storage, tasks, results)
    if request.phase == "read":
        return copied(tasks, results)
    return results
