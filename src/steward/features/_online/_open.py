"""Open the online store that ``STEWARD_ONLINE_STORE_URL`` names.

URLs, and the backend each gives::

    sqlite:///relative/online.db            SqliteOnlineStore (relative to the working folder)
    sqlite:////srv/steward/online.db        SqliteOnlineStore (absolute path: four slashes)
    sqlite:///online.db?synchronous=NORMAL  faster writes, may lose the last ones on power loss
    redis://host:6379/0                     RedisOnlineStore, keys prefixed "steward:"
    rediss://:password@host:6380/0?prefix=team_a:   TLS, a prefix of one's own
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from steward.core import ConfigurationError
from steward.features._online._redis import RedisOnlineStore
from steward.features._online._sqlite import SqliteOnlineStore
from steward.features._online._types import OnlineStore

__all__ = ["open_online_store"]

_FORMS = "sqlite:///path/online.db or redis://host:6379/0"


def _sqlite(url: str) -> SqliteOnlineStore:
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - {"synchronous"})
    if parts.netloc or not parts.path or unknown:
        problem = f"unknown options {unknown}" if unknown else "no file path"
        raise ConfigurationError(
            f"STEWARD_ONLINE_STORE_URL={url!r}: {problem}; write sqlite:///relative/online.db "
            "or sqlite:////absolute/online.db (optionally ?synchronous=NORMAL)"
        )
    path = Path(unquote(parts.path[1:]))  # sqlite:///x.db -> x.db, sqlite:////x.db -> /x.db
    if str(path) in ("", ".", ":memory:"):
        raise ConfigurationError(
            f"STEWARD_ONLINE_STORE_URL={url!r} names no file; an online store must be a file "
            "that materialization and readers share"
        )
    display = urlunsplit(("sqlite", "", parts.path, "", ""))
    return SqliteOnlineStore(path, synchronous=options.get("synchronous", "FULL"), url=display)


def _redis(url: str) -> RedisOnlineStore:
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = "steward:"
    kept = []
    for key, value in query:
        if key == "prefix":
            prefix = value
        else:
            kept.append((key, value))
    client_url = urlunsplit(parts._replace(query=urlencode(kept)))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.password:
        netloc = f"{parts.username or ''}:***@{netloc}"
    display = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return RedisOnlineStore(client_url, prefix=prefix, display_url=display)


def open_online_store(url: str) -> OnlineStore:
    """Open the online store ``url`` names (see the module docstring for the forms).

    Example:
        >>> store = open_online_store("sqlite:///.steward/online.db")  # doctest: +SKIP

    Raises:
        ConfigurationError: the URL's scheme is unknown or the URL is malformed, the file
            cannot be opened, or the redis client is not installed.
        BackendUnavailableError: the Redis server cannot be reached.
    """
    scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme == "sqlite":
        return _sqlite(url)
    if scheme in ("redis", "rediss"):
        return _redis(url)
    raise ConfigurationError(
        f"STEWARD_ONLINE_STORE_URL={url!r} has an unknown scheme {scheme + '://'!r}; use {_FORMS}"
    )
