"""``steward features get | materialize | status | profile``: the feature store's online side."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from steward.cli._common import HomeOption, JsonOption
from steward.cli._features_common import open_feature_store
from steward.cli._output import console, print_json, print_table
from steward.core import InvalidInputError
from steward.features import OnlineFeatures, ViewStatus

__all__ = ["get", "materialize", "profile", "register", "status"]


def register(app: typer.Typer) -> None:
    """Add the online commands to the ``steward features`` app."""
    app.command("get")(get)
    app.command("materialize")(materialize)
    app.command("status")(status)
    app.command("profile")(profile)


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. 2026-03-01 or "
            "2026-03-01T12:00:00+00:00 (no zone: UTC)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _entity(text: str) -> dict[str, str]:
    row: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"--entity {text!r} is not KEY=VALUE[,KEY=VALUE]; e.g. --entity customer_id=42"
            )
        row[key.strip()] = value.strip()
    return row


def _age(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d" + (f" {hours}h" if hours else "")
    if hours:
        return f"{sign}{hours}h" + (f" {minutes}m" if minutes else "")
    if minutes:
        return f"{sign}{minutes}m" + (f" {seconds}s" if seconds else "")
    return f"{sign}{seconds}s"


def _short(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def _online_json(online: OnlineFeatures, rows: list[dict[str, str]]) -> dict[str, Any]:
    values, times, statuses = online.values, online.event_timestamps, online.statuses
    return {
        "rows": [
            {
                "entity": row,
                "features": {
                    name: {
                        "value": values[name][i],
                        "event_timestamp": _iso(times[name][i]) or None,
                        "status": statuses[name][i],
                    }
                    for name in online.names
                },
            }
            for i, row in enumerate(rows)
        ]
    }


def get(
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--features",
            "-f",
            help="view:feature references (repeat, or separate with commas); view:* for all.",
            show_default=False,
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option("--service", "-s", help="A feature service, instead of --features."),
    ] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option(
            "--entity",
            "-e",
            help="Join keys of one entity, KEY=VALUE[,KEY=VALUE]; repeat for more entities.",
            show_default=False,
        ),
    ] = None,
    full_names: Annotated[
        bool, typer.Option("--full-names", help="Name features view__feature.")
    ] = False,
    enforce_ttl: Annotated[
        bool,
        typer.Option("--enforce-ttl", help="Show values older than their view's TTL as missing."),
    ] = False,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Read online features for entities: values, event times (staleness) and statuses.

    Example: steward features get -f customer_profile:age -f txn_windows:* -e customer_id=42
    """
    if not entity:
        raise InvalidInputError(
            "give at least one --entity KEY=VALUE, e.g. --entity customer_id=42"
        )
    refs = [ref.strip() for text in features or [] for ref in text.split(",") if ref.strip()]
    rows = [_entity(text) for text in entity]
    with open_feature_store(home) as store:
        online = store.get_online_features(
            refs if features else None,
            rows,
            service=service,
            full_feature_names=full_names,
            enforce_ttl=enforce_ttl,
        )
    if json:
        print_json(_online_json(online, rows))
        return
    now = datetime.now(UTC)
    print_table(
        "online features (times UTC)",
        ["entity", "feature", "value", "event time", "age", "status"],
        (
            (
                ", ".join(f"{k}={v}" for k, v in row.items()) if j == 0 else "",
                name,
                online.values[name][i],
                _short(online.event_timestamps[name][i]),
                _age(None if (t := online.event_timestamps[name][i]) is None else now - t),
                online.statuses[name][i],
            )
            for i, row in enumerate(rows)
            for j, name in enumerate(online.names)
        ),
    )


def materialize(
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First event time to read, ISO 8601 (default: the first event).",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end", help="Last event time to read, ISO 8601 (default: now).", show_default=False
        ),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="Start each view at its watermark (the last run)."),
    ] = False,
    views: Annotated[
        list[str] | None,
        typer.Option("--view", "-v", help="Only this view (repeat for more).", show_default=False),
    ] = None,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", help="Rows written to the online store per batch.")
    ] = 100_000,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Write the latest feature values of each view into the online store.

    Reads events in [--start, --end] (or from each view's watermark with
    --incremental) and keeps, per entity, the latest (then last-created) row.
    Running twice writes nothing new; a failed run leaves the watermark as it was.
    Times without a zone are UTC.
    """
    with open_feature_store(home) as store:
        report = store.materialize(
            start=_when(start, "--start"),
            end=_when(end, "--end"),
            incremental=incremental,
            views=views,
            progress=not json,
            batch_rows=batch_rows,
        )
    if json:
        print_json(report.as_dict())
        return
    print_table(
        f"materialized {report.rows_written:,} rows",
        ["view", "from", "to", "rows read", "rows written", "watermark", "seconds"],
        (
            (
                v.view,
                _iso(v.start) or "first event",
                _iso(v.end),
                f"{v.rows_read:,}",
                f"{v.rows_written:,}",
                _iso(v.watermark) or "none (gap before start)",
                f"{v.seconds:.2f}",
            )
            for v in report.views
        ),
    )


def _freshness(view: ViewStatus) -> str:
    colors = {"fresh": "green", "stale": "red", "never": "yellow", "no_sla": "dim"}
    label = {"no_sla": "no SLA", "never": "never materialized"}.get(view.freshness, view.freshness)
    return f"[{colors[view.freshness]}]{label}[/]"


def status(home: HomeOption = None, json: JsonOption = False) -> None:
    """Show each view's watermark, lag against its freshness SLA, last run and rows written."""
    with open_feature_store(home) as store:
        views = store.status()
    if json:
        print_json({"views": [v.as_dict() for v in views]})
        return
    print_table(
        f"{len(views)} feature views (times UTC)",
        ["view", "watermark", "lag", "SLA", "freshness", "last run", "rows written", "profiled"],
        (
            (
                v.view,
                _short(v.watermark),
                _age(v.lag),
                _age(v.freshness_sla),
                _freshness(v),
                f"{v.last_status} {_short(v.last_run_at)}" if v.last_status else "",
                f"{v.rows_written:,}",
                f"{v.profiled_rows:,} rows" if v.profiled_rows else "",
            )
            for v in views
        ),
    )
    for view in views:
        if view.last_status == "failed":
            console.print(
                f"[red]{view.view}: last run failed:[/] {escape(view.last_error or '')}",
                highlight=False,
            )


def profile(
    view: Annotated[str, typer.Argument(help="The feature view.", show_default=False)],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Show the profile stored with the view's last materialization (its drift baseline).

    Example: steward features profile customer_profile --json
    """
    with open_feature_store(home) as store:
        stored = store.get_view_profile(view)
    if json:
        print_json(stored.as_dict())
        return
    window = _short(stored.end)
    if stored.start is not None:
        window = f"{_short(stored.start)} .. {window}"
    console.print(
        f"[bold]{escape(stored.view)}[/]: profile of the run that finished "
        f"{_short(stored.finished_at)} UTC (events up to {window}; {stored.rows_read:,} rows "
        f"read, {stored.rows_written:,} written)",
        highlight=False,
    )
    console.print(stored.profile)
    for name, reason in stored.profile.skipped.items():
        console.print(f"[yellow]skipped[/] {escape(name)}: {escape(reason)}", highlight=False)
