"""``fab`` inside the checkout: the tasks of :mod:`parbench.tasks` (those the installed
``parbench`` command runs), with the checkout's inventory.yaml and results/ by default
wherever in it ``fab`` runs."""

from pathlib import Path

from parbench.tasks import collection

ns = collection(Path(__file__).resolve().parent)
