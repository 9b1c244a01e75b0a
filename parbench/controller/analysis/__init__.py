"""The analysis layer: what the records mean. Per-phase statistics and the samples of
repeated iterations, latency and series measures, whether a phase's figures can be
trusted, the history of runs (SQLite), regression checks, change points, comparing two
runs and which run made a file. It reads the run folders (the run layer) and never a node.
"""
