"""Binance spot (``/api/v3``) and USDT-M futures (``/fapi/v1``) over REST, in two tiers:
``rest`` mirrors the endpoints and their weights, ``client`` speaks the domain."""
