"""``python -m flowhook`` runs the CLI."""

from flowhook.cli.main import app

app()
