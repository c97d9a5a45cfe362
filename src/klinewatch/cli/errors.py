"""How the CLI reports errors: one clear line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from klinewatch.errors import InvalidInput, KlinewatchError
from klinewatch.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 1
EXIT_INVALID_INPUT = 2


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn klinewatch's typed errors into a message and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InvalidInput as e:
            stderr.print(f"[red]error:[/red] {e.message}")
            raise typer.Exit(EXIT_INVALID_INPUT) from None
        except KlinewatchError as e:
            stderr.print(f"[red]error:[/red] {e.message}")
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def load_settings() -> Settings:
    """Settings from the environment; a malformed value is reported by its variable."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as e:
        first = e.errors()[0]
        name = "KLINEWATCH_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        stderr.print(f"[red]error:[/red] {name}: {first['msg']}")
        raise typer.Exit(EXIT_INVALID_INPUT) from None
