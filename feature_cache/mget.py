"""A lean pipelined MGET connection for the scorer's hot path (asyncio protocol + hiredis).

redis-py's asyncio client spends most of a 100-key MGET in its own Python layers (client CPU of both,
for the same reply, measured in bench/results/redis_cache.json by ``bench/bench_redis_cache.py``). This
connection does only what the hot path needs: one TCP connection, commands written in order, replies
parsed by hiredis and matched to their callers first-in first-out (so concurrent callers pipeline).

It is built from the parameters of an existing redis-py client (host, port, username, password, db,
timeouts), connects lazily, reconnects after a failure, and raises ``ConnectionError`` /
``TimeoutError`` for the store to translate. Plain TCP only: a TLS or unix-socket client keeps using
redis-py (:meth:`PipelinedMget.from_client` returns None).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
import redis.asyncio


class _Pending:
    """Callers' replies still to come: ``count`` of them, delivered together (one future)."""

    __slots__ = ("count", "error", "future", "replies", "single")

    def __init__(self, future: asyncio.Future[Any], count: int, single: bool) -> None:
        self.future, self.count, self.single = future, count, single
        self.replies: list[Any] = []
        self.error: BaseException | None = None


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[_Pending] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:  # a reply nobody waits for: the stream is out of step
                self._fail(ConnectionError("unexpected reply from Redis"))
                return
            pending = self.waiting[0]
            if isinstance(reply, hiredis.ReplyError):
                pending.error = pending.error or ConnectionError(f"Redis error: {reply}")
            pending.replies.append(reply)
            if len(pending.replies) < pending.count:
                continue
            self.waiting.popleft()
            if pending.future.done():
                continue
            if pending.error is not None:
                pending.future.set_exception(pending.error)
            else:
                pending.future.set_result(pending.replies[0] if pending.single else pending.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def _fail(self, error: BaseException) -> None:
        self.lost = error
        while self.waiting:
            future = self.waiting.popleft().future
            if not future.done():
                future.set_exception(error)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """The reply of one command."""
        return self._send([args], single=True)

    def call_many(self, commands: list[tuple[Any, ...]]) -> asyncio.Future[list[Any]]:
        """Send ``commands`` in one write; one future of all their replies, in order (a reply error
        fails it, once every reply is read, so the stream stays in step)."""
        return self._send(commands, single=False)

    def _send(self, commands: list[tuple[Any, ...]], single: bool) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            future.set_exception(self.lost or ConnectionError("connection to Redis is closed"))
            return future
        if not commands:
            future.set_result([])
            return future
        self.waiting.append(_Pending(future, len(commands), single))
        self.transport.write(b"".join([hiredis.pack_command(c) for c in commands]))
        return future


class PipelinedMget:
    """One lazily connected, pipelined connection answering ``MGET``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        timeout_s: float = 2.0,
    ) -> None:
        self._host, self._port = host, port
        self._username, self._password, self._db = username, password, db
        self._timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def from_client(cls, client: redis.asyncio.Redis) -> PipelinedMget | None:
        """Same server and credentials as ``client``; None for a TLS or unix-socket client."""
        pool = client.connection_pool
        if pool.connection_class is not redis.asyncio.Connection:
            return None
        kw = pool.connection_kwargs
        return cls(
            kw.get("host", "localhost"),
            int(kw.get("port", 6379)),
            username=kw.get("username"),
            password=kw.get("password"),
            db=int(kw.get("db") or 0),
            timeout_s=float(kw.get("socket_timeout") or 2.0),
        )

    async def mget(self, keys: list[bytes]) -> list[bytes | None]:
        protocol = await self._connected()
        try:
            reply: list[bytes | None] = await asyncio.wait_for(protocol.call("MGET", *keys), self._timeout_s)
        except TimeoutError:
            # The replies may now be out of step with their callers: drop the connection.
            protocol._fail(TimeoutError(f"Redis did not answer within {self._timeout_s}s"))
            raise
        return reply

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The replies of ``commands``, sent in one write (a Redis Cluster node's share of a batch)."""
        protocol = await self._connected()
        try:
            replies: list[Any] = await asyncio.wait_for(protocol.call_many(commands), self._timeout_s)
        except TimeoutError:
            protocol._fail(TimeoutError(f"Redis did not answer within {self._timeout_s}s"))
            raise
        return replies

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            loop = asyncio.get_running_loop()
            _, fresh = await asyncio.wait_for(
                loop.create_connection(_Protocol, self._host, self._port), self._timeout_s
            )
            try:
                if self._password is not None:
                    user = (self._username,) if self._username else ()
                    await asyncio.wait_for(fresh.call("AUTH", *user, self._password), self._timeout_s)
                if self._db:
                    await asyncio.wait_for(fresh.call("SELECT", self._db), self._timeout_s)
            except BaseException:
                fresh._fail(ConnectionError("Redis handshake failed"))
                raise
            self._protocol = fresh
            return fresh

    async def aclose(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol._fail(ConnectionError("connection closed by the client"))
