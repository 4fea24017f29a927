r"""A transaction of the Redis online store: rows written through, with an undo log.

Redis has no transaction that can hold a materialization of millions of rows
without blocking every reader, so a transaction writes its rows as a plain write
does (newer rows only) and keeps, for every entity it changed, what it replaced::

    <prefix>undo:<view>                      set    ids of the view's open transactions
    <prefix>undo:<view>:<id>                 hash   entity hash key -> before \x1e ours
    <prefix>undo:<view>:<id>:lease           string set while the transaction is alive

``before`` is the replaced row (``event\x1fcreated\x1fvalues``, empty when the
entity had none); ``ours`` is the transaction's last event and created time for
it. The write script records the entry in the same call that changes the row.
``commit`` drops the log; ``rollback`` puts back every row the transaction
still holds (a row that a newer write replaced since is left alone: it would
have replaced the old one as well), then drops the log. Readers see the rows as
they are written; after a rollback the view holds what it held before.

A process that dies mid-transaction stops renewing its lease (a thread renews
it every few seconds); the next transaction begun on the view rolls back every
logged transaction whose lease has expired. The feature kinds a transaction
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

__all__ = ["WRITE_UNDO", "RedisTransaction", "recover"]

_LEASE_MS = 60_000  # how long a transaction's lease lasts without renewal
_RENEW_SECONDS = 10.0
_UNDO_CHUNK = 500  # entities restored per script call

# KEYS[1]: the undo hash; KEYS[2..]: row hashes; ARGV: event µs, created µs, values per row.
WRITE_UNDO = """
local undo = KEYS[1]
local written = 0
for i = 2, #KEYS do
  local at = (i - 2) * 3
  local event = tonumber(ARGV[at + 1])
  local created = tonumber(ARGV[at + 2]) or -math.huge
  local stored = redis.call('HMGET', KEYS[i], 't', 'c', 'v')
  local stored_event = tonumber(stored[1])
  if stored_event == nil or event > stored_event
      or (event == stored_event and created > (tonumber(stored[2]) or -math.huge)) then
    local entry = redis.call('HGET', undo, KEYS[i])
    local before
    if entry then
      before = string.sub(entry, 1, string.find(entry, '\\30', 1, true) - 1)
    elseif stored[1] then
      before = stored[1] .. '\\31' .. (stored[2] or '') .. '\\31' .. stored[3]
    else
      before = ''
    end
    redis.call('HSET', undo, KEYS[i], before .. '\\30' .. ARGV[at + 1] .. '\\31' .. ARGV[at + 2])
    redis.call('HSET', KEYS[i], 't', ARGV[at + 1], 'c', ARGV[at + 2], 'v', ARGV[at + 3])
    written = written + 1
  end
end
return written
"""

# KEYS[1]: the undo hash; KEYS[2..]: row hashes it logs. Puts back each row still ours.
_ROLLBACK = """
local undo = KEYS[1]
local restored = 0
for i = 2, #KEYS do
  local entry = redis.call('HGET', undo, KEYS[i])
  if entry then
    local split = string.find(entry, '\\30', 1, true)
    local before = string.sub(entry, 1, split - 1)
    local now = redis.call('HMGET', KEYS[i], 't', 'c')
    if now[1] and (now[1] .. '\\31' .. (now[2] or '')) == string.sub(entry, split + 1) then
      if before == '' then
        redis.call('DEL', KEYS[i])
      else
        local a = string.find(before, '\\31', 1, true)
        local b = string.find(before, '\\31', a + 1, true)
        redis.call('HSET', KEYS[i], 't', string.sub(before, 1, a - 1),
          'c', string.sub(before, a + 1, b - 1), 'v', string.sub(before, b + 1))
      end
      restored = restored + 1
    end
    redis.call('HDEL', undo, KEYS[i])
  end
end
return restored
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
    # Restore a chunk of logged rows at a time until the log is empty, then forget it.
    client = server._client
    undo = _undo_key(server, view, ident)
    script = client.register_script(_ROLLBACK)

    def work() -> None:
        cursor = 0
        while True:
            cursor, fields = client.hscan(undo, cursor, count=_UNDO_CHUNK)
            if fields:
                script(keys=[undo, *fields])
            if cursor == 0 and not client.exists(undo):
                break
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
