"""parbench: a distributed write/read/verify benchmark for Alluxio, driven by Fabric.

:mod:`parbench.tasks` holds the tasks (``fab`` in the checkout, the ``parbench`` command
once installed), :mod:`parbench.controller` runs on the controller and
:mod:`parbench.worker` is copied to every node (run there as ``python -m worker``).
"""
