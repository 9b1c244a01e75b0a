"""parbench worker: runs N parallel benchmark clients on one node (stdlib + alluxio only).

Run as ``python -m worker {write,read,verify-write,verify-read} ...``; each client writes
one ``parbench.client/1`` JSON line (see :mod:`worker.results`).
"""
