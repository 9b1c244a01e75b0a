"""Benchmarks of the benchmark itself: testbed start-up and memory, worker memory with
file size, controller overhead per phase, the cost of measuring, the worker against a
bare client loop (bench/bare.py), orchestration and chain overhead, the cost of verify.
``python -m bench [--cold] [--only PART]`` (``make bench``) writes bench/results.json."""
