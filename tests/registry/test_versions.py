"""Registering and loading versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from tests.registry import _hostile
from tests.registry.conftest import Trained, fraud_frame

from steward.core import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Principal,
    canonical_json,
)
from steward.registry import (
    DecisionMode,
    RegistryService,
    RegistrySettings,
    RiskTier,
    SignatureError,
    SklearnFlavor,
    Stage,
)
from steward.registry._packaging import read_manifest
from steward.sdk import Steward
from steward.tracking import RunStatus


def _events(client: Steward, action: str) -> list[dict[str, object]]:
    return [
        e.as_dict()
        for e in client.store.audit.list_events(limit=None, newest_first=False)
        if e.action == action
    ]


def test_register_from_run_infers_signature_snapshots_metrics_and_writes_a_card(
    client: Steward, registry: RegistryService, trained: Trained
) -> None:
    version = registry.register(
        trained.model, name="fraud", run_id=trained.run_id, sample_input=trained.frame[:50]
    )
    assert (version.ref, version.version, version.stage) == ("fraud:1", 1, Stage.REGISTERED)
    assert version.flavor == "sklearn"
    assert version.metrics == {
        "holdout_auc": 0.91,
        "holdout_auc/country:DE": 0.88,
        "train_loss": 0.3,
    }
    assert version.source["kind"] == "run" and version.run_id == trained.run_id
    sig = version.signature
    assert sig is not None and sig.input_format == "ndarray"  # fitted on a plain array
    amount, hour = sig.inputs
    assert (amount.name, amount.dtype, hour.name, hour.dtype) == (
        "amount",
        "float64",
        "hour",
        "int64",
    )
    train = trained.frame[:200]
    assert amount.min == pytest.approx(train["amount"].min())
    assert hour.max == train["hour"].max()
    assert sig.classes == (0, 1)
    assert version.example_digest is not None
    model = registry.get_model("fraud")
    assert model.owners == (client.store.actor,) and model.latest_version == 1
    card = registry.card("fraud:1")
    assert card.revision == 1
    assert card.section("evaluation")["holdout"]["metrics"] == {"auc": 0.91}
    assert card.section("evaluation")["holdout"]["segments"] == {"country:DE": {"auc": 0.88}}
    [event] = _events(client, "model.version.register")
    assert event["object_id"] == "fraud:1"
    assert event["details"]["artifact_digest"] == version.artifact_digest  # type: ignore[index]
    assert [e["object_id"] for e in _events(client, "model.create")] == ["fraud"]


def test_register_numbers_versions_per_model(registry: RegistryService, trained: Trained) -> None:
    numbers = [registry.register(trained.model, name="fraud").version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert registry.register(trained.model, name="churn").version == 1
    assert [v.version for v in registry.list_versions("fraud")] == [3, 2, 1]
    assert registry.get_version("fraud").version == 3


def test_register_concurrently_gives_distinct_numbers(
    registry: RegistryService, trained: Trained
) -> None:
    errors: list[BaseException] = []
    done: list[int] = []

    def work() -> None:
        try:
            done.append(registry.register(trained.model, name="fraud").version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(done) == [1, 2, 3, 4]


def test_register_refuses_a_failed_run_unless_forced(
    client: Steward, registry: RegistryService
) -> None:
    with pytest.raises(RuntimeError), client.start_run("fraud") as run:
        raise RuntimeError("diverged")
    model = LogisticRegression().fit(np.eye(2), [0, 1])
    with pytest.raises(ConflictError, match="failed; register a model from a finished run"):
        registry.register(model, name="fraud", run_id=run.id)
    with pytest.raises(NotFoundError):
        registry.get_model("fraud")  # nothing was recorded
    forced = registry.register(model, name="fraud", run_id=run.id, force=True)
    assert forced.source["forced"] is True
    assert forced.source["run_status"] == RunStatus.FAILED.value


def test_register_refuses_bad_arguments_clearly(
    registry: RegistryService, trained: Trained
) -> None:
    with pytest.raises(InvalidInputError, match="model name 'bad name'"):
        registry.register(trained.model, name="bad name")
    with pytest.raises(InvalidInputError, match="unknown flavor 'torch'"):
        registry.register(trained.model, name="fraud", flavor="torch")
    with pytest.raises(InvalidInputError, match="pass sample_input"):
        registry.register(trained.model, name="fraud", compile="onnx")
    with pytest.raises(PermissionDeniedError, match="pass unsafe=True"):
        registry.register(_hostile.clip_negative, name="fraud", flavor="python")
    with pytest.raises(InvalidInputError, match="failed to predict on the sample"):
        registry.register(trained.model, name="fraud", sample_input=np.ones((2, 5)))
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        registry.register(trained.model, name="fraud", run_id="nope")


def test_load_by_version_alias_and_latest_predicts_with_the_signature(
    registry: RegistryService, trained: Trained
) -> None:
    registry.register(
        trained.model, name="fraud", run_id=trained.run_id, sample_input=trained.frame[:20]
    )
    registry.set_alias("fraud:1", "champion")
    expected = trained.model.predict(trained.frame.to_numpy())
    for ref in ("fraud:1", "fraud@champion", "fraud"):
        loaded = registry.load(ref)
        assert loaded.version.ref == "fraud:1" and loaded.flavor == "sklearn"
        np.testing.assert_array_equal(loaded.predict(trained.frame), expected)
    loaded = registry.load("fraud:1")
    np.testing.assert_array_equal(loaded.predict(trained.frame.to_numpy()), expected)
    np.testing.assert_array_equal(loaded.predict(trained.frame.to_dict("records")), expected)
    assert loaded.predict_proba(trained.frame[:3]).shape == (3, 2)
    with pytest.raises(SignatureError) as caught:
        loaded.predict(pd.DataFrame({"amount": ["a lot"], "minute": [3]}))
    assert {c for c, _ in caught.value.problems} == {"amount", "hour", "minute"}
    with pytest.raises(SignatureError, match="'amount': 1 null value"):
        loaded.predict(np.array([[np.nan, 3.0]]))
    strict = registry.load("fraud:1", check_ranges=True)
    with pytest.raises(SignatureError, match="outside the training range"):
        strict.predict(pd.DataFrame({"amount": [1e9], "hour": [3]}))


def test_unknown_references_list_what_exists(registry: RegistryService, trained: Trained) -> None:
    with pytest.raises(NotFoundError, match="no models are registered yet"):
        registry.load("fraud")
    for _ in range(2):
        registry.register(trained.model, name="fraud")
    registry.register(trained.model, name="churn")
    registry.set_alias("fraud:2", "champion")
    with pytest.raises(
        NotFoundError,
        match=r"'fruad' does not exist; did you mean 'fraud'\? existing: 'fraud', 'churn'",
    ):
        registry.get_version("fruad:1")
    with pytest.raises(NotFoundError, match=r"no version 7; versions: 1, 2 \(latest 2\)"):
        registry.load("fraud:7")
    with pytest.raises(
        NotFoundError, match=r"no alias 'champ'; did you mean 'champion'\? aliases: champion → 2"
    ):
        registry.load("fraud@champ")
    with pytest.raises(NotFoundError, match="no aliases yet"):
        registry.load("churn@champion")
    with pytest.raises(InvalidInputError, match="versions are positive integers"):
        registry.load("fraud:x")


def _blob_path(client: Steward, digest: str) -> Path:
    settings = client.store.settings
    assert settings is not None
    return Path(settings.resolved_artifact_uri()) / "sha256" / digest[:2] / digest


def test_load_refuses_tampered_bytes_before_deserializing(
    client: Steward, registry: RegistryService, trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = registry.register(trained.model, name="fraud")
    manifest = read_manifest(client.store.artifacts, version.artifact_digest, what="test")
    blob = _blob_path(client, manifest["files"]["model.skops"]["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    calls: list[object] = []
    monkeypatch.setattr(SklearnFlavor, "load", lambda *args: calls.append(args))
    with pytest.raises(IntegrityError, match=r"^fraud:1: artifact \w+ is corrupt"):
        registry.load("fraud:1")
    assert calls == []


def test_load_refuses_a_smuggled_pickle_and_runs_nothing(
    client: Steward, registry: RegistryService, trained: Trained, tmp_path: Path
) -> None:
    version = registry.register(trained.model, name="fraud")
    marker = tmp_path / "pwned"
    for payload, error in (
        (_hostile.skops_with_pickled_array(marker), IntegrityError),
        (_hostile.pickle_payload(marker), IntegrityError),
        (_hostile.skops_with_type("os", "system"), PermissionDeniedError),
    ):
        hostile = client.store.artifacts.put(payload)
        manifest = {
            "format": "steward.model/1",
            "flavor": "sklearn",
            "metadata": {"file": "model.skops"},
            "files": {"model.skops": {"digest": hostile.digest, "size": hostile.size}},
        }
        stored = client.store.artifacts.put(canonical_json(manifest).encode())
        with client.store.database.engine.begin() as conn:  # an insider edits the record
            conn.execute(
                sa.text("UPDATE model_versions SET artifact_digest = :d WHERE id = :i"),
                {"d": stored.digest, "i": version.id},
            )
        with pytest.raises(error):
            registry.load("fraud:1")
        assert not marker.exists()


def test_python_flavor_needs_unsafe_at_registration_and_load(
    client: Steward, tmp_path: Path, trained: Trained
) -> None:
    version = client.registry.register(
        _hostile.clip_negative, name="clipper", flavor="python", unsafe=True
    )
    assert version.unsafe is True
    with pytest.raises(PermissionDeniedError, match="STEWARD_ALLOW_UNSAFE_FLAVORS"):
        client.registry.load("clipper:1")
    trusting = RegistryService(
        client.store, client.tracking, RegistrySettings(allow_unsafe_flavors=True)
    )
    loaded = trusting.load("clipper:1")
    np.testing.assert_array_equal(loaded.predict(np.array([[-1.0, 2.0]])), [[0.0, 2.0]])


def test_model_metadata_create_and_update(client: Steward, registry: RegistryService) -> None:
    model = registry.create_model(
        "fraud", owners=["ana", "bo"], team="risk", risk_tier="high", intended_use="flag cards"
    )
    assert (model.risk_tier, model.decision_mode) == (RiskTier.HIGH, DecisionMode.DECISION_SUPPORT)
    with pytest.raises(ConflictError, match="already exists"):
        registry.create_model("fraud")
    updated = registry.update_model("fraud", decision_mode="automation", description="cards")
    assert updated.decision_mode is DecisionMode.AUTOMATION and updated.owners == ("ana", "bo")
    with pytest.raises(InvalidInputError, match="options: low, medium, high, critical"):
        registry.update_model("fraud", risk_tier="extreme")
    assert [m.name for m in registry.list_models()] == ["fraud"]
    details = [e["details"] for e in _events(client, "model.update")]
    assert details[-1] == {"decision_mode": "automation", "description": "cards"}


def test_reads_and_writes_need_their_scopes(client: Steward, trained: Trained) -> None:
    client.registry.register(trained.model, name="fraud")
    reader = client.store.as_principal(Principal.of("rita", scopes=["models:read"]))
    service = RegistryService(reader, client.tracking)
    assert service.get_version("fraud:1").version == 1
    with pytest.raises(PermissionDeniedError, match="'models:write' on model:fraud"):
        service.register(trained.model, name="fraud")
    with pytest.raises(PermissionDeniedError, match="'models:promote'"):
        service.transition("fraud:1", "production", reason="ok")
    nobody = RegistryService(client.store.as_principal(Principal.of("eve")), client.tracking)
    with pytest.raises(PermissionDeniedError, match="'models:read'"):
        nobody.load("fraud:1")
    denied = _events(client, "access.denied")
    assert [e["details"]["scope"] for e in denied] == [  # type: ignore[index]
        "models:write",
        "models:promote",
        "models:read",
    ]


def test_sdk_run_registers_its_model_and_loads_by_alias(client: Steward) -> None:
    frame, label = fraud_frame(200)
    numeric = frame[["amount", "hour"]]
    with client.start_run("fraud") as run:
        run.log_dataset(numeric, name="tx", role="train")
        model = LogisticRegression(max_iter=300).fit(numeric, label)
        run.log_metric("auc", 0.8)  # still buffered: register_model flushes it first
        version = run.register_model(model, name="fraud", sample_input=numeric[:10])
    assert version.metrics == {"auc": 0.8}
    assert version.signature is not None and version.signature.input_format == "dataframe"
    client.registry.set_alias(version.ref, "champion")
    loaded = client.registry.load("fraud@champion")
    np.testing.assert_array_equal(loaded.predict(numeric), model.predict(numeric))


def test_input_example_is_kept_with_the_configured_rows(client: Steward, trained: Trained) -> None:
    service = RegistryService(client.store, client.tracking, RegistrySettings(example_rows=7))
    version = service.register(trained.model, name="fraud", sample_input=trained.frame)
    assert version.example_digest is not None
    none_kept = RegistryService(client.store, client.tracking, RegistrySettings(example_rows=0))
    assert (
        none_kept.register(trained.model, name="fraud", sample_input=trained.frame).example_digest
        is None
    )
    parsed = json.loads(canonical_json(version.as_dict()))
    assert parsed["signature"]["input_format"] == "ndarray"


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosting_libraries_register_and_load_natively(
    registry: RegistryService, trained: Trained, library: str
) -> None:
    if library == "xgboost":
        import xgboost

        model: object = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(
            trained.frame.to_numpy(), trained.label
        )
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(
            trained.frame, trained.label
        )
    version = registry.register(model, name="boost", sample_input=trained.frame[:20])
    assert version.flavor == library
    loaded = registry.load("boost:1")
    expected = model.predict(  # type: ignore[attr-defined]
        trained.frame.to_numpy() if library == "xgboost" else trained.frame
    )
    np.testing.assert_array_equal(loaded.predict(trained.frame), expected)
    assert loaded.predict_proba(trained.frame[:4]).shape == (4, 2)
