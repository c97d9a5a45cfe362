"""``generate-mappings``, ``mappings list|confirm`` and ``update-market-data`` as a user
runs them: real subprocesses, a real SQLite file, the simulator over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from klinewatch.sim.app import url_settings
from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim, running_sim
from tests.integration.test_cli import run


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with running_sim() as running:
        yield running


@pytest.fixture(scope="module")
def setup(sim: RunningSim, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """A database with the recorded contracts and freshly generated mappings."""
    cwd = tmp_path_factory.mktemp("mappings-cli")
    env = {
        **url_settings(sim.url),
        "KLINEWATCH_DATABASE_URL": f"sqlite:///{cwd / 'kw.sqlite3'}",
        "KLINEWATCH_COINGECKO_API_KEY": "demo-key",
        "KLINEWATCH_COINGECKO_BATCH_PAUSE_S": "0",
    }
    for args in (["db", "upgrade"], ["fetch-spot-contracts"], ["fetch-futures-contracts"]):
        assert run(args, env, cwd).returncode == 0, args
    generated = run(["generate-mappings"], env, cwd)
    assert generated.returncode == 0, generated.stderr
    assert "base assets" in generated.stdout and "needs_review" in generated.stdout
    return env, cwd


def listed(setup: tuple[dict[str, str], Path], *args: str) -> list[dict[str, object]]:
    env, cwd = setup
    result = run(["mappings", "list", "--format", "json", *args], env, cwd)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_generate_then_list_needs_review_as_json(setup: tuple[dict[str, str], Path]) -> None:
    review = listed(setup, "--status", "needs_review")
    assert review and {r["status"] for r in review} == {"needs_review"}
    pepe = next(r for r in review if r["base_asset"] == "1000PEPE")
    assert pepe["multiplier"] == 1000 and len(pepe["candidates"]) == 13  # type: ignore[arg-type]


def test_the_table_shows_candidates(setup: tuple[dict[str, str], Path]) -> None:
    env, cwd = setup
    result = run(["mappings", "list", "--symbol", "PEPEUSDT"], env, cwd)
    assert result.returncode == 0
    assert "needs_review" in result.stdout and "pepe-ceo-inu" in result.stdout
    assert "+7 more" in result.stdout


def test_confirm_sets_manual_confirmed(setup: tuple[dict[str, str], Path]) -> None:
    env, cwd = setup
    result = run(["mappings", "confirm", "PEPE", "pepe"], env, cwd)
    assert result.returncode == 0, result.stderr
    [pepe] = listed(setup, "--symbol", "PEPE")
    assert (pepe["coingecko_id"], pepe["status"]) == ("pepe", "manual_confirmed")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["mappings", "confirm", "NOSUCHASSET", "pepe"], 1, "no mapping for NOSUCHASSET"),
        (["mappings", "confirm", "DOGE", "no-such-coin-x"], 2, "CoinGecko has no coin"),
        (["mappings", "list", "--format", "xml"], 2, "--format"),
        (["mappings", "list", "--status", "done"], 2, "status"),
        (["update-market-data", "--symbols", "NOSUCHASSET"], 1, "no mapping"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    setup: tuple[dict[str, str], Path], args: list[str], code: int, message: str
) -> None:
    env, cwd = setup
    before = listed(setup)
    result = run(args, env, cwd)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert listed(setup) == before


def test_update_market_data_prints_the_summary(setup: tuple[dict[str, str], Path]) -> None:
    env, cwd = setup
    result = run(["update-market-data"], env, cwd)
    assert result.returncode == 0, result.stderr
    assert "update-market-data" in result.stdout and "failed batches" in result.stdout


def test_a_rejected_key_stops_with_the_setting_named(
    sim: RunningSim, setup: tuple[dict[str, str], Path]
) -> None:
    env, cwd = setup
    sim.reset(options=SimOptions(coingecko_api_key="the-right-key"))
    try:
        result = run(["update-market-data"], env, cwd)
    finally:
        sim.reset()
    assert result.returncode == 1
    assert "KLINEWATCH_COINGECKO_API_KEY" in result.stderr
