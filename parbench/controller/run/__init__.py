"""The run layer: what a run is, before any node is asked. The inventory (validated),
the plan (who writes and reads what, paired across nodes), the iterations (how often a timed
phase repeats), the sealed run (``run.json``: every request it will send) and its folder
under ``results/``, and which run a command continues. It imports nothing of the other
layers: the nodes, the analysis and the output build on it.
"""
