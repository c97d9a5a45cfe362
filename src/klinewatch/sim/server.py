"""Running the simulator: uvicorn with uvloop and httptools, in the foreground (CLI) or
in a background thread on a free loopback port (tests, benchmarks).

The listening socket is bound before uvicorn starts, so the port is known (and printed)
before the first request and port 0 never races with another process.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

from klinewatch.sim.app import create_sim_app
from klinewatch.sim.context import SimContext

BACKLOG = 2048


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one): clients that connect
    before uvicorn runs wait in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def make_server(ctx: SimContext, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(
        create_sim_app(ctx),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=1,
        backlog=BACKLOG,
    )
    return uvicorn.Server(config)


def serve_forever(ctx: SimContext, sock: socket.socket, log_level: str = "info") -> None:
    """Serve on ``sock`` until interrupted (the CLI's ``sim serve``)."""
    make_server(ctx, log_level).run(sockets=[sock])


@dataclass
class BackgroundServer:
    """The simulator served from a daemon thread; ``url`` once ``start`` returns."""

    ctx: SimContext
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = field(default=None, repr=False)

    def start(self, timeout_s: float = 10.0) -> str:
        self._sock = bind(self.host, self.port)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        server = self._server = make_server(self.ctx)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._sock]}, name="sim-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.005)
        return self.url

    def stop(self) -> None:
        """Stop at once: requests still sleeping in a fault are cancelled, not awaited."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
