"""A TCP proxy in front of a real server, to stop "the server" mid-run; and a black-holed port.

`TcpProxy.stop()` is a server going away: new connections are refused and open
ones are cut (RST). `start()` again brings it back on the same port. `trip`
calls back when a client sends given bytes (after forwarding them): a test can
stop servers exactly while that query runs, with no sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections taken since creation
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.frozen = False  # True: connections stay open (and new ones are taken) but no byte moves
        self._stopped = asyncio.Event()
        self.trip: tuple[bytes, Callable[[], None]] | None = None  # called once, then cleared

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.close()
            for w in list(self._open):
                w.transport.abort()
            if self._handlers:  # let the cut connections' handlers end (no task left pending)
                await asyncio.wait(self._handlers, timeout=5)
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                if not self.frozen:  # frozen: a network partition, nothing is answered
                    dst.write(data)
                    await dst.drain()
                if upstream and self.trip is not None and self.trip[0] in data:
                    callback, self.trip = self.trip[1], None
                    callback()
        if self.frozen:  # not even the close gets through: until stop() cuts it
            await self._stopped.wait()
        dst.transport.abort()


def dead_port() -> int:
    """A port where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port whose SYNs go unanswered (a listener with a full accept queue): connect hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    try:
        yield port
    finally:
        for c in fillers:
            c.close()
        listener.close()
