"""parbench controller: plans a run, drives the nodes over SSH and summarises results.

Runs on the controller machine only (Python 3.11); it may import ``worker.results``
(the record contract) but the worker never imports the controller.
"""

from __future__ import annotations
