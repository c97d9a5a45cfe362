"""The console script as a user runs it: real subprocesses, real databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KLINEWATCH = [sys.executable, "-m", "klinewatch.cli.main"]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KLINEWATCH_")}
    full_env.update(env)
    return subprocess.run(
        [*KLINEWATCH, *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from klinewatch.storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_db_upgrade_on_the_default_sqlite_file(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "klinewatch.sqlite3").is_file()
    assert f"revision {head_revision()}" in result.stdout
    down = run(["db", "downgrade", "base"], {}, tmp_path)
    assert down.returncode == 0 and "base" in down.stdout


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres:s3cret@127.0.0.1:1/nowhere", "cannot reach the database"),
        ("not-a-url", "is not a database URL"),
        ("mysql+nodriver://x@localhost/db", "unsupported database"),
    ],
)
def test_unusable_database_url_gives_one_line_and_nonzero_exit(
    tmp_path: Path, url: str, expected: str
) -> None:
    result = run(["db", "upgrade"], {"KLINEWATCH_DATABASE_URL": url}, tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "KLINEWATCH_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_malformed_setting_names_its_variable(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], {"KLINEWATCH_PORT": "eighty"}, tmp_path)
    assert result.returncode == 2
    assert "KLINEWATCH_PORT" in result.stderr


def test_every_command_has_help() -> None:
    from typer.main import get_command
    from typer.testing import CliRunner

    from klinewatch.cli.main import app

    root = get_command(app)
    paths: list[list[str]] = [[]]
    groups = [([], root)]
    while groups:
        prefix, group = groups.pop()
        for name, command in getattr(group, "commands", {}).items():
            paths.append([*prefix, name])
            if hasattr(command, "commands"):
                groups.append(([*prefix, name], command))
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output and len(result.output) > 100
