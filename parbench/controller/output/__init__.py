"""The output layer: what a person or a tool is shown. The console tables, the live
progress board, the HTML page and its plots, and the exports (metrics, JUnit). It
formats what the run and analysis layers hold, and talks to no node.
"""
