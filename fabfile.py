"""``fab`` inside the checkout: the tasks of :mod:`parbench.tasks` (the same collection the
installed ``parbench`` command runs)."""

from parbench.tasks import ns

__all__ = ["ns"]
