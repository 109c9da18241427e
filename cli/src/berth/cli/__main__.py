"""``python -m berth.cli``: the ``berth`` command (as run in the deployment images)."""

from berth.cli.main import app

app()
