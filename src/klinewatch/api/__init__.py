"""The HTTP edge: FastAPI app factory, routers, envelopes and error handlers."""
