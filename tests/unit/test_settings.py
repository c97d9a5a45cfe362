"""Settings from the environment: list values as ``a,b,c`` or as a JSON list."""

from __future__ import annotations

import pytest

from klinewatch.settings import Settings


@pytest.mark.parametrize("raw", ["tok-a,tok-b", '["tok-a", "tok-b"]', " tok-a , tok-b ,"])
def test_api_tokens_accept_a_comma_list_or_json(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("KLINEWATCH_API_TOKENS", raw)
    tokens = [t.get_secret_value() for t in Settings(_env_file=None).api_tokens]  # type: ignore[call-arg]
    assert tokens == ["tok-a", "tok-b"]


def test_quote_assets_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLINEWATCH_QUOTE_ASSETS", "USDT,FDUSD")
    assert Settings(_env_file=None).quote_assets == ["USDT", "FDUSD"]  # type: ignore[call-arg]
