"""parbench controller: plans a run, drives the nodes over SSH and summarises results.

Runs on the controller machine only. Its layers are folders (docs/architecture.md;
tests/unit/test_layers.py enforces them): ``run/`` (inventory, plan, the sealed run and
its folder) below ``nodes/`` (SSH, push, locks, the worker on each node) and
``analysis/`` (statistics, validity, history), ``output/`` above them, and the command
layer (``commands.py``, ``phases.py``, ``sweep.py``) on top. Of the worker it imports
only the contract (``worker.protocol``, ``worker.results``,
``worker.layout``); the worker never imports the controller.
"""

from __future__ import annotations
