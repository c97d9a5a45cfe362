"""The exchange simulator: recorded real markets served over the real wire formats.

A product feature (offline demo, replay) and the stand-in for every exchange in the tests
and benchmarks. It reads the data layout of ``shared/data/README.md`` lazily.

    app.py          create_sim_app(ctx) and the URL-prefix contract of every venue
    context.py      SimContext (store, clock, options, faults, stats, weight gates)
    store.py        recorded series, parsed on first use; aliases; the history shift
    clock.py        the simulated clock        candle_view.py  "now" and the open candle
    kline_rows.py   klines rows encoded once per series, sliced per request
    binance*.py     Binance spot and USDT-M futures routes, errors, exchangeInfo
    tickers.py      24h and price tickers      archive.py      data.binance.vision
    limits.py       request weight, 429/418    faults.py       faults and their matching
    middleware.py   faults, latency, stats around every route
    stats.py        per client/route counters  admin.py        /__sim/ endpoints
    server.py       uvicorn, foreground or background; testing.py the test fixture
"""
