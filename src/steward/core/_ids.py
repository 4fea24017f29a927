"""Time-sortable identifiers (UUIDv7, RFC 9562).

The standard library gains ``uuid.uuid7`` only in Python 3.14; the layout is a
dozen lines, so it is written here rather than adding a dependency.  Ids made by
one process are strictly increasing even within one millisecond (the 12-bit
``rand_a`` field is used as a counter, RFC 9562 section 6.2, method 1).
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new time-sortable id: 32 lowercase hex characters (a UUIDv7).

    Example:
        >>> a, b = new_id(), new_id()
        >>> len(a), a < b
        (32, True)
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF  # leave room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return f"{value:032x}"
