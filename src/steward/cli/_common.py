"""Options and state shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steward.core import load_settings
from steward.governance import GovernanceSettings, authenticated_store
from steward.sdk import Steward, connect
from steward.store import Store, StoreSettings

__all__ = [
    "HomeOption",
    "JsonOption",
    "connect_client",
    "governance_settings",
    "open_store",
    "set_token",
    "store_settings",
    "token",
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="steward home folder (default: STEWARD_HOME or ./.steward).",
        show_default=False,
    ),
]

# The credential given with the global --token option for this invocation (None:
# fall back to STEWARD_TOKEN). Set by the root callback before any command runs.
_token: str | None = None


def set_token(value: str | None) -> None:
    """Remember the credential given with ``--token`` for this invocation."""
    global _token
    _token = value


def token() -> str | None:
    """Return the credential given with ``--token``, if any."""
    return _token


def connect_client(home: Path | None = None) -> Steward:
    """Connect to the home in force as the caller (``--token``, else ``STEWARD_TOKEN``).

    Every command that needs the SDK client connects through here, so none can
    forget the global ``--token`` and silently act as the local identity.
    """
    return connect(home=home, token=_token, capture_environment=False)


def store_settings(home: Path | None = None, **overrides: Any) -> StoreSettings:
    """Load store settings from the environment, with ``--home`` taking precedence."""
    if home is not None:
        overrides["home"] = home
    return load_settings(StoreSettings, **overrides)


def governance_settings(home: Path | None = None) -> GovernanceSettings:
    """Load governance settings from the environment, with ``--home`` taking precedence."""
    return load_settings(GovernanceSettings, **({"home": home} if home is not None else {}))


def open_store(home: Path | None = None, *, authenticate: bool = True) -> Store:
    """Open the store of the home in force, acting as the caller (``--token``/``STEWARD_TOKEN``).

    ``authenticate=False`` is for operator commands (``init``, ``db``) that act on
    the database itself with the credentials of its URL.
    """
    store = Store.open(store_settings(home))
    if not authenticate:
        return store
    try:
        return authenticated_store(store, _token, settings=governance_settings(home))
    except BaseException:
        store.close()
        raise
