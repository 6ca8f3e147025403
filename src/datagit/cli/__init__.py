"""The command line: thin click commands over `datagit.api`, one module per verb."""

from datagit.cli.main import cli, main

__all__ = ["cli", "main"]
