"""The Lua scripts that write rows into the Redis online store, with and without an undo log.

One script call writes a chunk of rows: ``KEYS`` holds the rows' hash keys
(after the undo log's key, with one), ``ARGV`` three values per row (event µs,
created µs or "", values JSON). A row is set only when it is newer than the
stored one (later event time, or the same one and a later created time); the
script runs atomically, so a reader sees each hash before or after its row,
never a mix.

A first load (no key of the chunk stored yet) takes a shorter path: one
``EXISTS`` over every key of the chunk replaces a read per row, each row being
newer than nothing. A key the chunk names twice is read before its second row,
which must still beat the first. Measured on 1,000-row calls into an empty
view, that takes about a third of the server's time off each row.

With an undo log, the script appends one entry per call that changed rows (see
``_redis_undo``): per row, its key, the replaced event time, created time and
values (false when there was no row) and the times written. A first load's
entries are the same, with every replaced value false.
"""

from __future__ import annotations

__all__ = ["CHUNK", "WRITE", "WRITE_UNDO"]

# Rows per script call. Lua's unpack() of the chunk's keys (for EXISTS) is bounded by
# its C stack (8,000 values); a call also blocks every other client while it runs.
CHUNK = 1_000

_TEMPLATE = """
local first, last = {first}, #KEYS
local log, n, written = {{}}, 0, 0
local fresh = last >= first and redis.call('EXISTS', unpack(KEYS, first, last)) == 0
local seen = {{}}
for i = first, last do
  local key, at = KEYS[i], (i - first) * 3
  local event, created = ARGV[at + 1], ARGV[at + 2]
  local old_event, old_created, old_values = false, false, false
  local newer = true
  if fresh and not seen[key] then
    seen[key] = true
  else
    local stored = redis.call('HMGET', key, {fields})
    old_event, old_created, old_values = stored[1], stored[2], stored[3] or false
    if old_event then
      local e, stored_e = tonumber(event), tonumber(old_event)
      newer = e > stored_e or (e == stored_e
        and (tonumber(created) or -math.huge) > (tonumber(old_created) or -math.huge))
    end
  end
  if newer then
    redis.call('HSET', key, 't', event, 'c', created, 'v', ARGV[at + 3])
    written = written + 1{log_row}
  end
end{log_push}
return written
"""

_LOG_ROW = """
    log[n + 1], log[n + 2], log[n + 3] = key, old_event, old_created
    log[n + 4], log[n + 5], log[n + 6] = old_values, event, created
    n = n + 6"""

_LOG_PUSH = """
if n > 0 then
  redis.call('RPUSH', KEYS[1], cmsgpack.pack(log))
end"""

# KEYS: row hashes; ARGV: event µs, created µs ("" for none), values JSON per row.
WRITE = _TEMPLATE.format(first=1, fields="'t', 'c'", log_row="", log_push="")

# KEYS[1]: the undo log; KEYS[2..]: row hashes; ARGV as for WRITE.
WRITE_UNDO = _TEMPLATE.format(first=2, fields="'t', 'c', 'v'", log_row=_LOG_ROW, log_push=_LOG_PUSH)
