"""Point a CCXT exchange at another origin: the simulator, a proxy, or the real host.

CCXT builds every request URL from ``exchange.urls['api']``, a dict (sometimes nested) of
``https://api.{hostname}``-style strings. Replacing the scheme and host of each entry with
one base URL, and keeping any path CCXT put after the host, sends every call there:

    okx = ccxt.async_support.okx({"urls": {"api": ccxt_api_urls("okx", "http://127.0.0.1:9000/okx")}})

The same function serves production with a real base (``https://www.okx.com``), so the
setting ``KLINEWATCH_OKX_URL`` works the same against the simulator and the exchange.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import ccxt


def ccxt_api_urls(exchange_id: str, base: str) -> dict[str, Any]:
    """The ``urls['api']`` replacement for ``ccxt.<exchange_id>`` sending every call to ``base``.

    Refuses an exchange whose API spans several hosts (Binance's spot, futures and
    archive hosts, say): folding them onto one base would silently misroute requests.
    """
    exchange_class = getattr(ccxt, exchange_id, None)
    if not isinstance(exchange_class, type) or not issubclass(exchange_class, ccxt.Exchange):
        raise ValueError(f"unknown CCXT exchange {exchange_id!r}")
    split = urlsplit(base)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ValueError(f"base URL {base!r} must be http(s)://host[:port][/prefix]")
    api: dict[str, Any] = exchange_class().describe()["urls"]["api"]
    origins = {_origin(url) for url in _strings(api)}
    if len(origins) > 1:
        hosts = ", ".join(sorted(origins))
        raise ValueError(f"{exchange_id} uses several API hosts ({hosts}); give one base each")
    rewritten: dict[str, Any] = _rewrite(api, base.rstrip("/"))
    return rewritten


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    return []


def _origin(url: str) -> str:
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}"


def _rewrite(node: Any, base: str) -> Any:
    """Same shape as ``node``; each URL's origin becomes ``base``, its path is kept."""
    if isinstance(node, dict):
        return {key: _rewrite(value, base) for key, value in node.items()}
    if isinstance(node, str):
        return base + node[len(_origin(node)) :]
    return node
