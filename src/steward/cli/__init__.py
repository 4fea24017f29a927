"""The ``steward`` command line: a thin adapter over the services."""

from steward.cli._app import app, main

__all__ = ["app", "main"]
