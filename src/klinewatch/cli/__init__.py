"""Typer commands, one module per group; ``main.app`` is the console script."""
