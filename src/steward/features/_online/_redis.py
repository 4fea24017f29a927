"""The scale-out online store: a Redis server, one hash per view and entity key.

Layout, under a key prefix (default ``steward:``)::

    <prefix>fv:<view>:<entity key>   hash  t = event µs, c = created µs or "", v = values (JSON)
    <prefix>schema:<view>            hash  feature -> kind (how to rebuild timestamps)

Writes go through a Lua script (``_redis_scripts``) that, for each row of a
chunk, compares the stored times and sets the hash only when the row is newer,
so concurrent writers and replays cannot regress a value; many chunks travel
in one pipeline. A transaction (``begin``) writes the same way and logs what it
replaces, so that a rollback puts it back (see ``_redis_undo``). The JSON of a
whole batch is built by DuckDB from the Arrow columns (a Python ``json.dumps``
per row would cap writes near 100,000 rows/s), on one thread so that a small
machine keeps a core for the server; Arrow frames the commands. Reads
are one ``HMGET`` for one entity, and one script call returning every hash for
many, so a read is one round trip either way.

The script touches many keys in one call, which a Redis Cluster refuses unless
they share a hash slot; run a single server (or a replicated primary).

Needs the ``redis`` extra (``pip install 'steward[redis]'``), imported only
when a Redis store is opened.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from steward.core import BackendUnavailableError, ConfigurationError
from steward.features._online._codec import (
    EncodedBatch,
    check_name,
    encode_batch,
    encode_entity_keys,
    encode_rows,
    from_micros,
    merge_kinds,
)
from steward.features._online._redis_scripts import CHUNK, WRITE, WRITE_UNDO
from steward.features._online._redis_undo import RedisTransaction
from steward.features._online._types import Kind, OnlineColumns, OnlineRecord, OnlineRow

__all__ = ["RedisOnlineStore"]

_SLICE = 10_000  # rows encoded at a time, while the server runs the previous slice
_REFRESH_SECONDS = 1.0
_FIELDS = ("t", "c", "v")

# One reply for many keys: per key "event\x1fcreated\x1fvalues" (empty when absent), joined
# by \x1e. JSON escapes control characters, so neither separator occurs inside the values;
# one bulk string parses far faster in the client than a nested array.
_READ = """
local out = {}
for i = 1, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 't', 'c', 'v')
  if row[1] then
    out[i] = row[1] .. '\\31' .. (row[2] or '') .. '\\31' .. row[3]
  else
    out[i] = ''
  end
end
return table.concat(out, '\\30')
"""

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


class _Schema:
    __slots__ = ("kinds", "loaded_at", "stamps")

    def __init__(self, kinds: dict[str, Kind]) -> None:
        self.kinds = kinds
        self.stamps = frozenset(name for name, kind in kinds.items() if kind == "timestamp")
        self.loaded_at = time.monotonic()


class RedisOnlineStore:
    """Online feature values on a Redis server.

    Args:
        url: ``redis://[[user]:password@]host:port/db`` or ``rediss://...`` (TLS).
        prefix: the key prefix that keeps this deployment's keys apart.
        display_url: how to name the server in messages (default: ``url`` without its
            password).

    Raises:
        ConfigurationError: the redis client is not installed or the URL is malformed.
        BackendUnavailableError: the server cannot be reached.
    """

    def __init__(
        self, url: str, *, prefix: str = "steward:", display_url: str | None = None
    ) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "a redis:// STEWARD_ONLINE_STORE_URL needs the redis client; install the extra: "
                "pip install 'steward[redis]'"
            ) from None
        self.url = display_url or url
        self.prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            self._client: Any = redis.Redis.from_url(
                url, socket_connect_timeout=5, socket_timeout=60, health_check_interval=30
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"STEWARD_ONLINE_STORE_URL={self.url!r} is not a Redis URL ({exc}); "
                "write redis://host:6379/0"
            ) from None
        self._response_error: type[BaseException] = redis.ResponseError
        self._no_script: type[BaseException] = redis.exceptions.NoScriptError
        self._read_script = self._client.register_script(_READ)
        self._schemas: dict[str, _Schema] = {}
        # One thread: on a small machine the Redis server needs the other cores, and the
        # per-slice queries are too small to gain from more.
        self._json = duckdb.connect(config={"threads": 1})
        self._json_lock = threading.Lock()
        self._write_sha: str = ""
        self._undo_sha: str = ""
        self._load_scripts("reach")

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.url!r}, prefix={self.prefix!r})"

    def _load_scripts(self, action: str) -> None:
        self._write_sha = self._call(action, lambda: self._client.script_load(WRITE))
        self._undo_sha = self._call(action, lambda: self._client.script_load(WRITE_UNDO))

    def _call(self, action: str, work: Any) -> Any:
        try:
            return work()
        except self._errors as exc:
            raise BackendUnavailableError(
                f"cannot {action} the online store at {self.url}: {exc}; check "
                "STEWARD_ONLINE_STORE_URL and that the Redis server is up"
            ) from exc

    def close(self) -> None:
        """Disconnect from the server."""
        self._client.close()
        with self._json_lock:
            self._json.close()

    # -- schema ------------------------------------------------------------------------------

    def _schema_key(self, view: str) -> str:
        return f"{self.prefix}schema:{view}"

    def _load_schema(self, view: str) -> _Schema:
        raw = self._call("read", lambda: self._client.hgetall(self._schema_key(view)))
        schema = self._schemas[view] = _Schema({k.decode(): v.decode() for k, v in raw.items()})
        return schema

    def _schema(self, view: str, features: Sequence[str]) -> _Schema:
        schema = self._schemas.get(view)
        if schema is None:
            return self._load_schema(view)
        if time.monotonic() - schema.loaded_at > _REFRESH_SECONDS and any(
            name not in schema.kinds for name in features
        ):
            return self._load_schema(view)  # another process may have written new features
        return schema

    def _record_kinds(self, view: str, kinds: dict[str, Kind]) -> None:
        schema = self._schemas.get(view) or self._load_schema(view)
        merged = merge_kinds(schema.kinds, kinds)
        changed = {name: kind for name, kind in merged.items() if schema.kinds.get(name) != kind}
        if changed:
            self._call("write", lambda: self._client.hset(self._schema_key(view), mapping=changed))
            self._schemas[view] = _Schema(merged)

    # -- reads -------------------------------------------------------------------------------

    def read(
        self, view: str, entity_keys: Sequence[tuple[Any, ...]], features: Sequence[str]
    ) -> list[OnlineRecord | None]:
        """Return, per entity key in order, its stored row (None where there is none).

        Raises:
            InvalidInputError: an entity key part is null or of an unusable type.
            BackendUnavailableError: the server cannot be reached.
        """
        return self.read_columns(view, entity_keys, features).records()

    def _fetch(self, view: str, entity_keys: Sequence[tuple[Any, ...]]) -> list[Any]:
        # Per key, its (event, created, values) replies; (None, None, None) when absent.
        head = f"{self.prefix}fv:{view}:"
        keys = [head + key for key in encode_entity_keys(entity_keys)]
        if len(keys) == 1:
            return [
                self._call("read", lambda: self._client.execute_command("HMGET", keys[0], *_FIELDS))
            ]
        packed = self._call("read", lambda: self._read_script(keys=keys))
        return [
            record.split(b"\x1f", 2) if record else (None, None, None)
            for record in packed.split(b"\x1e")
        ]

    def read_columns(
        self, view: str, entity_keys: Sequence[tuple[Any, ...]], features: Sequence[str]
    ) -> OnlineColumns:
        """Return the stored rows of the entity keys, one list per feature.

        Raises:
            InvalidInputError: an entity key part is null or of an unusable type.
            BackendUnavailableError: the server cannot be reached.
        """
        if not entity_keys:
            return OnlineColumns.empty(0, features)
        replies = self._fetch(view, entity_keys)
        stamps = self._schema(view, features).stamps
        out = OnlineColumns.empty(len(replies), features)
        columns = list(out.values.items())
        for index, (event, created, blob) in enumerate(replies):
            if event is None:
                continue
            out.event_us[index] = int(event)
            out.created_us[index] = int(created) if created else None
            stored = json.loads(blob)
            for name, column in columns:
                value = stored.get(name)
                if value is not None and name in stamps:
                    value = from_micros(value)
                column[index] = value
        return out

    # -- writes ------------------------------------------------------------------------------

    def write(self, view: str, rows: Iterable[OnlineRow]) -> int:
        """Store the rows that are newer than what is stored; return how many were.

        Raises:
            InvalidInputError: a row lacks a key part or an event time, or a value's type
                cannot be stored.
            BackendUnavailableError: the server cannot be reached.
        """
        return self._write(view, encode_rows(rows))

    def write_batch(
        self,
        view: str,
        batch: pa.RecordBatch | pa.Table,
        *,
        join_keys: Sequence[str],
        event_timestamp: str,
        created_timestamp: str | None = None,
    ) -> int:
        """Store the newer rows of an Arrow batch (every other column is a feature).

        Raises:
            InvalidInputError: a named column is missing, a key or event time is null, or a
                column's type cannot be stored.
            BackendUnavailableError: the server cannot be reached.
        """
        encoded = encode_batch(
            batch,
            join_keys=join_keys,
            event_timestamp=event_timestamp,
            created_timestamp=created_timestamp,
        )
        return self._write(view, encoded)

    def _fragments(
        self, view: str, batch: EncodedBatch, start: int, count: int
    ) -> tuple[list[str], list[str]]:
        # Per row of a slice, its key and its three script arguments already in the wire
        # protocol (RESP bulk strings): the Python work per row is then a list join, not a
        # client library's encoding of four arguments. DuckDB writes the values' JSON;
        # Arrow frames the strings (a third less CPU than framing them in the query).
        features = {name: column.slice(start, count) for name, column in batch.features.items()}
        keys = pc.binary_join_element_wise(
            f"{self.prefix}fv:{view}:", batch.keys.slice(start, count), ""
        )
        event = pc.cast(batch.event_us.slice(start, count), pa.string())
        created = pc.fill_null(pc.cast(batch.created_us.slice(start, count), pa.string()), "")
        args = pc.binary_join_element_wise(
            _bulk(event), _bulk(created), _bulk(self._values_json(features, count)), ""
        )
        return _bulk(keys).to_pylist(), args.to_pylist()

    def _values_json(self, features: dict[str, pa.Array], count: int) -> pa.Array:
        # Per row, its features as one JSON object (what readers parse).
        if not features:
            return pa.array(["{}"] * count, pa.string())
        table = pa.table({f"v_{name}": column for name, column in features.items()})
        fields = ", ".join(f"{_quote(name)} := {_quote('v_' + name)}" for name in features)
        query = f"SELECT CAST(to_json(struct_pack({fields})) AS VARCHAR) FROM batch"
        with self._json_lock:
            self._json.register("batch", table)
            try:
                result = self._json.sql(query).to_arrow_table()
            finally:
                self._json.unregister("batch")
        return _flat(result.column(0))

    def _write(self, view: str, batch: EncodedBatch, undo: str | None = None) -> int:
        check_name("view", view)
        for name in batch.features:
            check_name("feature", name)
        if not len(batch):
            return 0
        self._record_kinds(view, batch.kinds)
        try:
            return int(self._call("write", lambda: self._send(view, batch, undo)))
        except BackendUnavailableError as exc:
            if not isinstance(exc.__cause__, self._no_script):
                raise
        # The server lost its scripts (a restart, SCRIPT FLUSH): load and send again,
        # which is safe because a replayed row is never newer than itself.
        self._load_scripts("write")
        return int(self._call("write", lambda: self._send(view, batch, undo)))

    def begin(self, view: str) -> RedisTransaction:
        """Start a transaction of writes to ``view``: written through, undone on rollback.

        Rolls back first any earlier transaction on the view whose process died.

        Raises:
            InvalidInputError: ``view`` is not a valid name.
            BackendUnavailableError: the server cannot be reached.
        """
        check_name("view", view)
        return RedisTransaction(self, view)

    def _commands(self, keys: list[str], args: list[str], undo: str | None) -> Iterator[bytes]:
        # One EVALSHA of the write script per chunk of rows, in the wire protocol; with an
        # undo log, the undo-logging script, its log's key first.
        sha = self._write_sha if undo is None else self._undo_sha
        first = "" if undo is None else f"${len(undo.encode())}\r\n{undo}\r\n"
        extra = 0 if undo is None else 1
        for start in range(0, len(keys), CHUNK):
            count = len(keys[start : start + CHUNK])
            numkeys = str(count + extra)
            header = (
                f"*{3 + extra + 4 * count}\r\n$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n"
                f"${len(numkeys)}\r\n{numkeys}\r\n{first}"
            )
            body = "".join(keys[start : start + CHUNK]) + "".join(args[start : start + CHUNK])
            yield (header + body).encode()

    def _send(self, view: str, batch: EncodedBatch, undo: str | None) -> int:
        # Every command is sent before any reply is read, a slice at a time: the server
        # runs the scripts of one slice while DuckDB encodes the next. Each reply is one
        # small integer, so unread replies never fill a buffer.
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            sent = 0
            for start in range(0, len(batch), _SLICE):
                keys, args = self._fragments(view, batch, start, _SLICE)
                for command in self._commands(keys, args, undo):
                    connection.send_packed_command([command], check_health=False)
                    sent += 1
            written = 0
            failure: BaseException | None = None
            for _ in range(sent):
                try:
                    written += int(connection.read_response())
                except self._response_error as exc:  # keep reading: every reply must be consumed
                    failure = failure or exc
            if failure is not None:
                raise failure
            return written
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def delete_view(self, view: str) -> None:
        """Remove every row and the recorded kinds of ``view``.

        Raises:
            BackendUnavailableError: the server cannot be reached.
        """
        check_name("view", view)
        pattern = f"{self.prefix}fv:{view}:".translate(_GLOB_SPECIAL) + "*"

        def drop() -> None:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=1_000):
                batch.append(key)
                if len(batch) == 500:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
            self._client.unlink(self._schema_key(view))

        self._call("delete from", drop)
        self._schemas.pop(view, None)


def _bulk(strings: pa.Array) -> pa.Array:
    r"""Frame each string as a RESP bulk string: ``"ab"`` → ``"$2\r\nab\r\n"``."""
    size = pc.cast(pc.binary_length(strings), pa.string())
    return pc.binary_join_element_wise("$", size, "\r\n", strings, "\r\n", "")


def _flat(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks()
    return array


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
