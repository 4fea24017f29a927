r"""A transaction of the Redis online store: rows written through, with an undo log.

Redis has no transaction that can hold a materialization of millions of rows
without blocking every reader, so a transaction writes its rows as a plain write
does (newer rows only) and logs what they replaced::

    <prefix>undo:<view>                      set    ids of the view's open transactions
    <prefix>undo:<view>:<id>                 list   one entry per write-script call
    <prefix>undo:<view>:<id>:lease           string set while the transaction is alive

Each entry is a MessagePack array (Redis' ``cmsgpack``) of six values per row the
call changed: the row's hash key, the replaced event time, created time and
values (false when the entity had no row), and the times the transaction wrote.
The write script appends its entry in the same call that changes the rows, so
the log never misses a change. ``commit`` drops the log. ``rollback`` takes the
entries newest first, one script call each (the entry is popped by the call that
applies it, so an interrupted rollback resumes where it stopped), and puts back
each row that still holds the times the transaction wrote; a row a newer write
replaced since is left alone (that write would have replaced the old row too).
Undoing newest first also handles an entity written twice: its last change is
undone to its first one's result, then that to what was there before. Readers
see the rows as they are written; after a rollback the view holds what it held.

A process that dies mid-transaction stops renewing its lease (a thread renews
it every few seconds); the next transaction begun on the view rolls back every
logged transaction whose lease has lapsed. The feature kinds a transaction
records for new features stay after a rollback: they describe no stored value.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from steward.core import InvalidInputError
from steward.features._online._codec import EncodedBatch, encode_batch
from steward.features._online._types import OnlineTransaction

__all__ = ["RedisTransaction", "recover"]

_LEASE_MS = 60_000  # how long a transaction's lease lasts without renewal
_RENEW_SECONDS = 10.0

# KEYS[1]: the undo log. Pops its newest entry and undoes it; 0 once the log is empty.
_ROLLBACK = """
local entry = redis.call('RPOP', KEYS[1])
if not entry then
  return 0
end
local log = cmsgpack.unpack(entry)
for j = #log - 5, 1, -6 do
  local key = log[j]
  local now = redis.call('HMGET', key, 't', 'c')
  if now[1] == log[j + 4] and now[2] == log[j + 5] then
    if log[j + 1] then
      redis.call('HSET', key, 't', log[j + 1], 'c', log[j + 2], 'v', log[j + 3])
    else
      redis.call('DEL', key)
    end
  end
end
return 1
"""


class _Server(Protocol):
    url: str
    prefix: str
    _client: Any
    _errors: tuple[type[BaseException], ...]

    def _call(self, action: str, work: Callable[[], Any]) -> Any: ...

    def _write(self, view: str, batch: EncodedBatch, undo: str | None = None) -> int: ...


def _registry(server: _Server, view: str) -> str:
    return f"{server.prefix}undo:{view}"


def _undo_key(server: _Server, view: str, ident: str) -> str:
    return f"{server.prefix}undo:{view}:{ident}"


def _roll_back(server: _Server, view: str, ident: str) -> None:
    # Undo the log's entries newest first, one script call each, then forget the log.
    client = server._client
    undo = _undo_key(server, view, ident)
    script = client.register_script(_ROLLBACK)

    def work() -> None:
        while script(keys=[undo]):
            pass
        pipe = client.pipeline(transaction=True)
        pipe.delete(undo, f"{undo}:lease")
        pipe.srem(_registry(server, view), ident)
        pipe.execute()

    server._call("roll back a transaction in", work)


def recover(server: _Server, view: str) -> int:
    """Roll back the view's logged transactions whose owner stopped renewing its lease.

    Returns how many were rolled back.

    Raises:
        BackendUnavailableError: the server cannot be reached.
    """
    client = server._client
    idents = server._call("read", lambda: client.smembers(_registry(server, view)))
    recovered = 0
    for raw in idents:
        ident = raw.decode() if isinstance(raw, bytes) else str(raw)
        lease = f"{_undo_key(server, view, ident)}:lease"

        def alive(lease: str = lease) -> bool:
            return bool(client.exists(lease))

        if not server._call("read", alive):
            _roll_back(server, view, ident)
            recovered += 1
    return recovered


class RedisTransaction(OnlineTransaction):
    """Rows of one view written through with an undo log (see the module docstring).

    Open one with :meth:`RedisOnlineStore.begin`.

    Raises:
        BackendUnavailableError: the server cannot be reached.
    """

    def __init__(self, server: _Server, view: str) -> None:
        self.view = view
        self._server = server
        self._ident = uuid.uuid4().hex
        self._undo = _undo_key(server, view, self._ident)
        self._lease = f"{self._undo}:lease"
        self._written = 0
        self._open = True
        recover(server, view)
        client = server._client

        def start() -> None:
            client.set(self._lease, "1", px=_LEASE_MS)
            client.sadd(_registry(server, view), self._ident)

        server._call("begin a transaction in", start)
        self._stop = threading.Event()
        self._renewer = threading.Thread(
            target=self._renew, name=f"steward-online-lease-{view}", daemon=True
        )
        self._renewer.start()

    def __repr__(self) -> str:
        state = "open" if self._open else "finished"
        return f"RedisTransaction({self.view!r}, written={self._written}, {state})"

    def _renew(self) -> None:
        client = self._server._client
        while not self._stop.wait(_RENEW_SECONDS):
            try:
                client.set(self._lease, "1", px=_LEASE_MS)
            except self._server._errors:
                continue  # the writes fail too; renewal resumes if the server comes back

    def _live(self) -> None:
        if not self._open:
            raise InvalidInputError(
                f"the online transaction of view {self.view!r} is finished; begin a new one"
            )

    def _finish(self) -> None:
        self._open = False
        self._stop.set()

    def write_batch(
        self,
        batch: Any,
        *,
        join_keys: Sequence[str],
        event_timestamp: str,
        created_timestamp: str | None = None,
    ) -> int:
        """Write an Arrow batch's newer rows, logging what they replace; return rows held.

        Raises:
            InvalidInputError: a named column is missing, a key or event time is null, a
                column's type cannot be stored, or the transaction is finished.
            BackendUnavailableError: the server cannot be reached.
        """
        self._live()
        encoded = encode_batch(
            batch,
            join_keys=join_keys,
            event_timestamp=event_timestamp,
            created_timestamp=created_timestamp,
        )
        self._written += self._server._write(self.view, encoded, self._undo)
        return len(encoded)

    def commit(self) -> int:
        """Keep the rows written and drop the undo log; return how many rows were stored.

        Raises:
            InvalidInputError: the transaction is already finished.
            BackendUnavailableError: the server cannot be reached (the lease then lapses,
                and the next transaction on the view rolls this one back).
        """
        self._live()
        self._finish()
        client = self._server._client

        def drop() -> None:
            pipe = client.pipeline(transaction=True)
            pipe.unlink(self._undo, self._lease)
            pipe.srem(_registry(self._server, self.view), self._ident)
            pipe.execute()

        self._server._call("commit a transaction in", drop)
        return self._written

    def rollback(self) -> None:
        """Put back every row this transaction replaced (a no-op once finished).

        Raises:
            BackendUnavailableError: the server cannot be reached (the lease then lapses,
                and the next transaction on the view finishes the rollback).
        """
        if not self._open:
            return
        self._finish()
        _roll_back(self._server, self.view, self._ident)
