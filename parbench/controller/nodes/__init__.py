"""The nodes layer: talking to the machines over SSH. Connections and running a step on
every node at once (``remote``), the probe and agent that stay on a node, pushing the
worker and its runtime, the locks a run holds there, the common start gate, what a node
prints, and stopping the load on Ctrl-C or SIGTERM. It builds on the run layer only.
"""
