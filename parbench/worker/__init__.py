"""parbench worker: runs N parallel benchmark clients on one node (Python 3.9+, stdlib
and the storage client only; it never imports the controller).

Run as ``python -m worker PHASE ...`` by hand (write, read, verify-write, verify-read,
meta, clean) or by the controller (``run`` a request file, ``agent``, ``lock``,
``generate``). The contract with the controller: :mod:`worker.protocol` (the requests,
the phase table, exit codes, the lines on a node's session), :mod:`worker.results`
(each client's ``parbench.client/1`` JSON line) and :mod:`worker.layout` (the node's
folders).
"""
