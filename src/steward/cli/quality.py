"""``steward quality``: profile, validate, drift and fairness on Parquet and CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import typer

from steward.cli._common import JsonOption
from steward.cli._output import console, print_json
from steward.core import InvalidInputError
from steward.quality import DriftDetector, ReferenceProfile, Schema, evaluate_fairness

__all__ = ["app"]

app = typer.Typer(
    help="Data quality: profile files, validate them against a schema, measure drift and fairness.",
    no_args_is_help=True,
)

DataArgument = Annotated[
    Path, typer.Argument(help="A Parquet file or folder, or a CSV file.", show_default=False)
]
HtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html", help="Also write the report as a standalone HTML page here.", show_default=False
    ),
]


def _write_html(path: Path | None, page: str) -> None:
    if path is not None:
        path.write_text(page, encoding="utf-8")


@app.command("profile")
def profile(
    data: DataArgument,
    save_profile: Annotated[
        Path | None,
        typer.Option(
            "--save-profile",
            help="Write the reference profile for later drift checks (.npz, or .json).",
            show_default=False,
        ),
    ] = None,
    save_schema: Annotated[
        Path | None,
        typer.Option("--save-schema", help="Write the inferred schema (JSON).", show_default=False),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Key column of the inferred schema (repeat for several)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Summarize every column; optionally save a reference profile and an inferred schema."""
    reference = ReferenceProfile.build(data)
    if save_profile is not None:
        reference.save(save_profile)
    if save_schema is not None:
        Schema.infer(data, key=key or ()).save(save_schema)
    if json:
        print_json(
            {
                "rows": reference.rows,
                "columns": reference.describe(),
                "skipped": dict(reference.skipped),
            }
        )
        return
    console.print(reference)
    for name, reason in reference.skipped.items():
        console.print(f"[yellow]skipped[/] {name}: {reason}")


@app.command("validate")
def validate(
    data: DataArgument,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", help="Schema JSON written by `profile --save-schema`.", show_default=False
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="Infer the schema from this trusted file instead.",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat unknown columns as errors.")
    ] = False,
    html: HtmlOption = None,
    json: JsonOption = False,
) -> None:
    """Check a file against a schema; exit 1 when any issue is an error."""
    if (schema is None) == (reference is None):
        raise InvalidInputError("give exactly one of --schema and --reference")
    expected = Schema.load(schema) if schema is not None else Schema.infer(reference)
    report = expected.validate(data, allow_extra_columns=not strict)
    _write_html(html, report.to_html())
    if json:
        print_json(report.to_dict())
    else:
        console.print(report)
    if not report.ok:
        raise typer.Exit(1)


def _parse_override(text: str) -> tuple[str, str | tuple[str, float]]:
    column, sep, spec = text.partition("=")
    if not sep or not column or not spec:
        raise InvalidInputError(
            f"--column-method {text!r} must look like COLUMN=METHOD[:THRESHOLD]"
        )
    method, colon, threshold = spec.partition(":")
    if not colon:
        return column, method
    try:
        return column, (method, float(threshold))
    except ValueError:
        raise InvalidInputError(
            f"--column-method {text!r}: threshold {threshold!r} is not a number"
        ) from None


def _load_reference(path: Path) -> Any:
    if path.suffix.lower() in (".npz", ".json"):
        return ReferenceProfile.load(path)
    return path


@app.command("drift")
def drift(
    reference: Annotated[
        Path,
        typer.Argument(
            help="Reference data (Parquet/CSV) or a saved profile (.npz/.json).", show_default=False
        ),
    ],
    current: DataArgument,
    method: Annotated[
        str,
        typer.Option(
            "--method", help="auto, ks, chi2, psi, kl, js, wasserstein, wasserstein_norm."
        ),
    ] = "auto",
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Threshold for --method.", show_default=False),
    ] = None,
    column_method: Annotated[
        list[str] | None,
        typer.Option(
            "--column-method", help="Per-column override COLUMN=METHOD[:THRESHOLD] (repeatable)."
        ),
    ] = None,
    columns: Annotated[
        list[str] | None, typer.Option("--column", help="Compare only these columns (repeatable).")
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when the dataset counts as drifted.")
    ] = False,
    html: HtmlOption = None,
    json: JsonOption = False,
) -> None:
    """Compare current data with a reference, column by column."""
    overrides = dict(_parse_override(text) for text in column_method or [])
    detector = DriftDetector(
        method=method,
        threshold=threshold,
        columns=columns or None,
        column_methods=overrides or None,
    )
    report = detector.fit(_load_reference(reference)).score(current)
    _write_html(html, report.to_html())
    if json:
        print_json(report.to_dict())
    else:
        console.print(report)
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)


def _read_columns(path: Path, names: list[str]) -> pa.Table:
    if not path.exists():
        raise InvalidInputError(f"no such file or folder: {str(path)!r}")
    try:
        if path.suffix.lower() == ".csv":
            table = pa_csv.read_csv(
                path, convert_options=pa_csv.ConvertOptions(include_columns=names)
            )
        else:
            table = pq.read_table(path, columns=names)
    except (pa.ArrowInvalid, KeyError, OSError) as exc:
        raise InvalidInputError(f"cannot read columns {names} from {str(path)!r}: {exc}") from exc
    return table


def _label(value: str, dtype: pa.DataType) -> Any:
    try:
        if pa.types.is_integer(dtype):
            return int(value)
        if pa.types.is_floating(dtype):
            return float(value)
    except ValueError:
        raise InvalidInputError(f"--pos-label {value!r} is not a {dtype} label") from None
    if pa.types.is_boolean(dtype):
        return value.lower() in ("1", "true", "yes")
    return value


@app.command("fairness")
def fairness(
    data: DataArgument,
    y_true: Annotated[str, typer.Option("--y-true", help="Column of true labels.")],
    y_pred: Annotated[str, typer.Option("--y-pred", help="Column of predicted labels.")],
    sensitive: Annotated[
        list[str],
        typer.Option("--sensitive", help="Protected attribute column (repeat for intersections)."),
    ],
    pos_label: Annotated[str, typer.Option("--pos-label", help="The positive label.")] = "1",
    min_group_size: Annotated[
        int, typer.Option("--min-group-size", help="Warn below this size.")
    ] = 30,
    fail_on_violation: Annotated[
        bool,
        typer.Option("--fail-on-violation", help="Exit 1 when the four-fifths rule is violated."),
    ] = False,
    html: HtmlOption = None,
    json: JsonOption = False,
) -> None:
    """Per-group decision rates and fairness metrics for a binary classifier's decisions."""
    table = _read_columns(data, list(dict.fromkeys([y_true, y_pred, *sensitive])))
    report = evaluate_fairness(
        table.column(y_true),
        table.column(y_pred),
        sensitive_features=table.select(sensitive),
        pos_label=_label(pos_label, table.schema.field(y_true).type),
        min_group_size=min_group_size,
    )
    _write_html(html, report.to_html())
    if json:
        print_json(report.to_dict())
    else:
        console.print(report)
    if fail_on_violation and report.four_fifths_violation:
        raise typer.Exit(1)
