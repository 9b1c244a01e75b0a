"""Benchmarks of the benchmark itself: testbed start-up and memory, worker memory with
file size, controller overhead per phase. ``python -m bench`` (``make bench``)."""
