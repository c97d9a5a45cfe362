"""``create_app(settings)``: the composition root of the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from klinewatch import __version__
from klinewatch.api.routers import health
from klinewatch.settings import Settings
from klinewatch.storage.engine import build_engine, session_factory


def create_app(settings: Settings) -> FastAPI:
    """Build the application; engines are created here, never at import time."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings.database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="klinewatch",
        version=__version__,
        description="Crypto market data: candles, indicators, volume-trap monitor, prices.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    return app
