"""Admin endpoints, the ``sim serve`` command and the ``sim_server`` fixture."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from klinewatch.cli.main import app
from klinewatch.sim.context import SimOptions
from klinewatch.sim.testing import RunningSim, default_data_dir


def test_stats_count_per_client_and_route_and_reset(http: httpx.Client) -> None:
    http.get("/api/v3/ping", headers={"X-Sim-Client": "bot-1"})
    http.get("/api/v3/klines", params={"symbol": "NOPEUSDT", "interval": "1h"},
             headers={"X-Sim-Client": "bot-2"})  # fmt: skip
    stats = http.get("/__sim/stats").json()
    assert stats["clients"]["bot-1"]["/api/v3/ping"] == {
        "requests": 1, "weight": 1, "429": 0, "418": 0, "statuses": {"200": 1},
    }  # fmt: skip
    assert stats["clients"]["bot-2"]["/api/v3/klines"]["statuses"] == {"400": 1}
    assert stats["totals"]["requests"] == 2
    assert http.post("/__sim/stats/reset").json()["totals"]["requests"] == 0


def test_options_and_limits_can_be_changed_over_http(http: httpx.Client) -> None:
    assert (
        http.post("/__sim/options", json={"spot_weight_per_min": 3}).json()["spot_weight_per_min"]
        == 3
    )
    assert [http.get("/api/v3/time").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert http.post("/__sim/limits/reset").status_code == 200
    assert http.get("/api/v3/time").status_code == 200
    assert http.post("/__sim/options", json={"nope": 1}).status_code == 400


@pytest.mark.parametrize("sim_server", [SimOptions(latency_ms=150)], indirect=True)
def test_the_fixture_takes_options(sim_server: RunningSim) -> None:
    response = httpx.get(sim_server.url + "/api/v3/ping")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.15
    assert sim_server.ctx.options.latency_ms == 150


def test_serve_help_explains_every_option() -> None:
    result = CliRunner().invoke(app, ["sim", "serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--data", "--port", "--host", "--latency-ms", "--clock", "--speed",
                   "--shift-to-now", "--replicate-symbols", "--fault"):  # fmt: skip
        assert option in result.output


def test_serve_prints_the_url_settings_and_serves() -> None:
    command = [sys.executable, "-m", "klinewatch.cli.main", "sim", "serve", "--data",
               str(default_data_dir()), "--port", "0", "--clock", "2025-03-01T00:00:00Z",
               "--fault", "kind=503,route=/api/v3/ping,count=1"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().strip().removeprefix("export ").split("=", 1)
                     for _ in range(8))  # fmt: skip
        base = lines["KLINEWATCH_BINANCE_SPOT_URL"]
        assert base.startswith("http://127.0.0.1:")
        assert lines == {
            "KLINEWATCH_BINANCE_SPOT_URL": base,
            "KLINEWATCH_BINANCE_FUTURES_URL": base,
            "KLINEWATCH_BINANCE_ARCHIVE_URL": base + "/archive",
            "KLINEWATCH_OKX_URL": base + "/okx",
            "KLINEWATCH_BYBIT_URL": base + "/bybit",
            "KLINEWATCH_BITGET_URL": base + "/bitget",
            "KLINEWATCH_COINGECKO_URL": base + "/coingecko/api/v3",
            "KLINEWATCH_PRICE_SOURCE_URL": base + "/debank",
        }
        assert httpx.get(base + "/api/v3/ping", timeout=10).status_code == 503
        assert httpx.get(base + "/api/v3/time").json() == {
            "serverTime": pytest.approx(1740787200000, abs=60_000)
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_rejects_a_bad_fault_spec() -> None:
    result = CliRunner().invoke(
        app, ["sim", "serve", "--data", str(default_data_dir()), "--fault", "kind=explode"]
    )
    assert result.exit_code == 2
    assert "explode" in result.output
