"""schemathesis over the app's own OpenAPI document, served by uvicorn over real HTTP in
front of the simulator (with stored real candles): whatever the generated input, no
answer is a 5xx, and every status, content type, header and body is the documented
one. A valid token is sent, so config writes are exercised too."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr

from klinewatch.api.app import create_app
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.server import bind
from klinewatch.sim.testing import RunningSim, running_sim
from klinewatch.storage import migrate
from klinewatch.storage.engine import build_engine, session_factory, transaction
from tests.api.conftest import NOW_MS, TOKEN, api_settings

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def sim_for_contract() -> Iterator[RunningSim]:
    with running_sim() as sim:
        sim.reset(now_ms=NOW_MS)
        yield sim


@pytest.fixture(scope="module")
def served(sim_for_contract: RunningSim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sim = sim_for_contract
    database_url = f"sqlite:///{tmp_path_factory.mktemp('contract') / 'kw.sqlite3'}"
    migrate.upgrade(database_url)
    _store(sim, database_url)
    config = api_settings(database_url, None, cache_prefix=f"kwct:{uuid.uuid4().hex}:")
    config = config.model_copy(update={"binance_spot_url": sim.url, "binance_futures_url": sim.url})
    for venue in ("okx", "bybit", "bitget"):
        config = config.model_copy(update={f"{venue}_url": f"{sim.url}/{venue}"})
    config = config.model_copy(  # the price sources too (prices, min amount, portfolio)
        update={
            "price_source_url": f"{sim.url}/debank",
            "coingecko_url": f"{sim.url}/coingecko/api/v3",
            "price_source_api_key": SecretStr("sim-key"),
            "coingecko_api_key": SecretStr("sim-key"),
        }
    )
    app = create_app(config, clock=sim.ctx.clock, background=False)
    sock = bind()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    host, port = sock.getsockname()[:2]
    yield f"http://{host}:{port}"
    server.should_exit = True
    thread.join(10)


def _store(sim: RunningSim, database_url: str) -> None:
    engine = build_engine(database_url)
    try:
        for interval in ("1h", "4h", "1d"):
            series = sim.ctx.store.get("binance", "spot", "BTCUSDT", interval)
            closed = series.take(series.close_time_ms < NOW_MS)
            with transaction(session_factory(engine)) as session:
                write_candles(session, SeriesKey("binance", "spot", "BTCUSDT", interval), closed)
    finally:
        engine.dispose()


def test_no_server_error_and_every_answer_is_documented(served: str, tmp_path: Path) -> None:
    """``schemathesis run`` (its CLI, as CI runs it) with positive and negative input."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{served}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "1",
        "--header",
        f"X-API-Token: {TOKEN}",
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(  # in tmp_path: schemathesis keeps a cache in its working folder
        command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout.lower()


def test_the_data_sources_are_documented(served: str) -> None:
    with urllib.request.urlopen(f"{served}/openapi.json", timeout=10) as answer:
        document = json.loads(answer.read())
    klines = document["components"]["schemas"]["KlinesData"]["properties"]["data_source"]
    assert set(klines["enum"]) == {"cache", "database", "api"}
