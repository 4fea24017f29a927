from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from steward.core import InvalidInputError, NotFoundError
from steward.features import (
    Aggregation,
    Definitions,
    Entity,
    Feature,
    FeatureDefinitionError,
    FeatureRef,
    FeatureService,
    FeatureView,
    FileSource,
    QuerySource,
    UnknownFeatureError,
    load_definitions,
    window_label,
)

CUSTOMER = Entity("customer", ["customer_id"])
PROFILES = FileSource("profiles", "/data/profiles.parquet", "ts", "created")
TXNS = FileSource("transactions", "/data/txns/*.parquet", "ts")


def _profile_view(**overrides: object) -> FeatureView:
    kwargs: dict[str, object] = {
        "entities": CUSTOMER,
        "source": PROFILES,
        "features": [Feature("age", "int64"), Feature("email", "string", pii=True)],
        "ttl": timedelta(days=30),
    }
    kwargs.update(overrides)
    return FeatureView("customer_profile", **kwargs)  # type: ignore[arg-type]


def _window_view() -> FeatureView:
    return FeatureView(
        "txn_windows",
        entities=[CUSTOMER],
        source=TXNS,
        aggregations=[
            Aggregation("amount", "sum", timedelta(hours=24)),
            Aggregation("amount", "count", timedelta(days=7)),
            Aggregation("merchant", "count_distinct", timedelta(days=30), name="merchants_30d"),
        ],
    )


def _definitions() -> Definitions:
    return Definitions(
        views=[_profile_view(), _window_view()],
        services=[FeatureService("fraud", ["customer_profile:age", "txn_windows:*"])],
    )


def test_window_label_uses_the_natural_unit() -> None:
    assert window_label(timedelta(hours=1)) == "1h"
    assert window_label(timedelta(hours=24)) == "24h"
    assert window_label(timedelta(days=7)) == "7d"
    assert window_label(timedelta(days=30)) == "30d"
    assert window_label(timedelta(minutes=15)) == "15m"
    assert window_label(timedelta(seconds=30)) == "30s"


def test_aggregation_names_and_dtypes() -> None:
    view = _window_view()
    assert view.feature_names == ("amount_sum_24h", "amount_count_7d", "merchants_30d")
    assert [f.dtype for f in view.output_features] == ["float64", "int64", "int64"]
    assert view.is_window
    assert view.source_columns() == ("customer_id", "ts", "amount", "merchant")


def test_view_collects_keys_and_columns() -> None:
    view = _profile_view()
    assert view.join_keys == ("customer_id",)
    assert view.source_columns() == ("customer_id", "ts", "created", "age", "email")
    assert view.feature("email").pii
    assert view.feature("age").arrow_type == pa.int64()
    with pytest.raises(UnknownFeatureError, match="did you mean 'age'"):
        view.feature("agee")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Entity("Customer", ["customer_id"]),
        lambda: Entity("customer", []),
        lambda: Entity("customer", ["id", "id"]),
        lambda: Feature("Age", "int64"),
        lambda: Feature("age", "int128"),  # type: ignore[arg-type]
        lambda: Feature("event_timestamp", "int64"),
        lambda: FileSource("profiles", "", "ts"),
        lambda: FileSource("my-profiles", "p.parquet", "ts"),
        lambda: QuerySource("q", "   ", "ts"),
        lambda: Aggregation("amount", "median", timedelta(hours=1)),  # type: ignore[arg-type]
        lambda: Aggregation("amount", "sum", timedelta(0)),
        lambda: _profile_view(ttl=timedelta(seconds=-1)),
        lambda: _profile_view(features=[]),
        lambda: _profile_view(features=[Feature("age", "int64"), Feature("age", "int32")]),
        lambda: _profile_view(features=[Feature("customer_id", "int64")]),
        lambda: _profile_view(entities=[CUSTOMER, Entity("client", ["customer_id"])]),
        lambda: _profile_view(aggregations=[Aggregation("amount", "sum", timedelta(hours=1))]),
        lambda: FeatureView(
            "w",
            CUSTOMER,
            TXNS,
            aggregations=[Aggregation("amount", "sum", timedelta(hours=1))],
            ttl=timedelta(days=1),
        ),
        lambda: FeatureService("fraud", []),
        lambda: FeatureService("fraud", ["customer_profile.age"]),
        lambda: FeatureService("fraud", "customer_profile:age"),  # type: ignore[arg-type]
    ],
)
def test_bad_definitions_are_refused(build: object) -> None:
    with pytest.raises(FeatureDefinitionError) as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, InvalidInputError)
    assert str(info.value)


def test_feature_ref_parses_and_prints() -> None:
    ref = FeatureRef.parse("customer_profile:age")
    assert (ref.view, ref.feature, str(ref)) == ("customer_profile", "age", "customer_profile:age")
    assert FeatureRef.parse("v:*", allow_wildcard=True).feature == "*"
    for bad in ["age", "a:b:c", "View:age", "v:*"]:
        with pytest.raises(FeatureDefinitionError, match="feature"):
            FeatureRef.parse(bad)


def test_definitions_collect_entities_and_sources_from_views() -> None:
    defs = _definitions()
    assert sorted(defs.entities) == ["customer"]
    assert sorted(defs.sources) == ["profiles", "transactions"]
    assert defs.view("txn_windows").is_window
    assert defs.service("fraud").refs[1] == FeatureRef("txn_windows", "*")


def test_definitions_resolve_groups_and_expands() -> None:
    defs = _definitions()
    resolved = defs.resolve(["txn_windows:*", "customer_profile:email", "customer_profile:age"])
    assert resolved == {
        "txn_windows": ("amount_sum_24h", "amount_count_7d", "merchants_30d"),
        "customer_profile": ("email", "age"),
    }


def test_unknown_features_list_close_matches() -> None:
    defs = _definitions()
    with pytest.raises(UnknownFeatureError, match="customer_profile:age") as info:
        defs.resolve(["customer_profile:agge"])
    assert isinstance(info.value, NotFoundError)
    with pytest.raises(UnknownFeatureError, match="did you mean 'txn_windows'"):
        defs.resolve(["txn_window:amount_sum_24h"])
    with pytest.raises(UnknownFeatureError, match="'fraud'"):
        defs.service("frauds")


def test_definitions_refuse_duplicates_and_dangling_services() -> None:
    other = FileSource("profiles", "/elsewhere.parquet", "ts")
    with pytest.raises(FeatureDefinitionError, match="two different sources"):
        Definitions(
            views=[_profile_view(), FeatureView("other", CUSTOMER, other, [Feature("x", "bool")])]
        )
    with pytest.raises(UnknownFeatureError, match="feature service 'fraud'"):
        Definitions(views=[_profile_view()], services=[FeatureService("fraud", ["nope:x"])])
    with pytest.raises(FeatureDefinitionError, match="both a feature view and a feature service"):
        Definitions(
            views=[_profile_view()],
            services=[FeatureService("customer_profile", ["customer_profile:age"])],
        )


def test_definitions_round_trip_through_canonical_dict() -> None:
    defs = _definitions()
    again = Definitions.from_dict(defs.to_dict())
    assert again == defs
    assert again.digest == defs.digest
    assert again.view("customer_profile").ttl == timedelta(days=30)
    assert again.view("txn_windows").aggregations[0].window == timedelta(hours=24)
    changed = Definitions(views=[_profile_view(ttl=timedelta(days=7)), _window_view()])
    assert changed.digest != defs.digest


FEATURES_PY = """
from datetime import timedelta
from steward.features import Entity, Feature, FeatureService, FeatureView, FileSource

customer = Entity("customer", ["customer_id"])
profiles = FileSource("profiles", "data/profiles.parquet", "ts")
customer_profile = FeatureView(
    "customer_profile", customer, profiles, [Feature("age", "int64")], ttl=timedelta(days=1)
)
fraud = FeatureService("fraud", ["customer_profile:*"])
"""


def test_load_definitions_from_a_file_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text(FEATURES_PY)
    defs = load_definitions(tmp_path / "features.py")
    assert sorted(defs.views) == ["customer_profile"]
    assert sorted(defs.services) == ["fraud"]
    source = defs.sources["profiles"]
    assert isinstance(source, FileSource)
    assert source.path == str(tmp_path / "data" / "profiles.parquet")


def test_load_definitions_from_a_package(tmp_path: Path) -> None:
    package = tmp_path / "repo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "entities.py").write_text(
        "from steward.features import Entity\ncustomer = Entity('customer', ['customer_id'])\n"
    )
    (package / "views.py").write_text(
        "from datetime import timedelta\n"
        "from steward.features import Feature, FeatureView, FileSource\n"
        "from .entities import customer\n"
        "v = FeatureView('profile', customer, FileSource('p', '/x.parquet', 'ts'),"
        " [Feature('age', 'int64')])\n"
    )
    defs = load_definitions(package)
    assert sorted(defs.views) == ["profile"]
    assert sorted(defs.entities) == ["customer"]


def test_load_definitions_reports_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FeatureDefinitionError, match="no feature definitions"):
        load_definitions(tmp_path / "missing.py")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(FeatureDefinitionError, match="RuntimeError: boom"):
        load_definitions(broken)
    bad_name = tmp_path / "bad.py"
    bad_name.write_text("from steward.features import Entity\nx = Entity('Bad', ['id'])\n")
    with pytest.raises(FeatureDefinitionError, match=r"bad\.py: entity name 'Bad'"):
        load_definitions(bad_name)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(FeatureDefinitionError, match="defines no Entity"):
        load_definitions(empty)
