"""Online stores: the latest feature values per entity, behind one small Protocol.

Backends: :class:`SqliteOnlineStore` (embedded default) and
:class:`RedisOnlineStore`, chosen by URL in :func:`open_online_store`.
"""

from steward.features._online._codec import encode_entity_key, from_micros, to_micros
from steward.features._online._open import open_online_store
from steward.features._online._redis import RedisOnlineStore
from steward.features._online._sqlite import SqliteOnlineStore
from steward.features._online._types import (
    OnlineColumns,
    OnlineRecord,
    OnlineRow,
    OnlineStore,
    OnlineTransaction,
)

__all__ = [
    "OnlineColumns",
    "OnlineRecord",
    "OnlineRow",
    "OnlineStore",
    "OnlineTransaction",
    "RedisOnlineStore",
    "SqliteOnlineStore",
    "encode_entity_key",
    "from_micros",
    "open_online_store",
    "to_micros",
]
