"""Flavors: each saves, loads and predicts the same; sklearn loads only trusted types."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import lightgbm
import numpy as np
import pytest
import skops.io
import xgboost
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from tests.registry import _hostile

from steward.core import (
    ConfigurationError,
    IntegrityError,
    InvalidInputError,
    PermissionDeniedError,
)
from steward.registry import (
    LightGBMFlavor,
    OnnxFlavor,
    PythonFlavor,
    SklearnFlavor,
    XGBoostFlavor,
    builtin_flavors,
    compile_to_onnx,
)
from steward.registry.flavors import detect_flavor, is_trusted_type, require

X = np.random.default_rng(1).random((120, 4))
Y = (X[:, 0] + X[:, 1] > 1).astype(int)


def _round_trip(flavor: object, model: object, tmp_path: Path) -> object:
    folder = tmp_path / "saved"
    folder.mkdir(parents=True)
    metadata = flavor.save(model, folder)  # type: ignore[attr-defined]
    return flavor.load(folder, metadata)  # type: ignore[attr-defined]


def test_flavor_sklearn_round_trip_predicts_the_same(tmp_path: Path) -> None:
    model = HistGradientBoostingClassifier(max_iter=10).fit(X, Y)
    flavor = SklearnFlavor()
    loaded = _round_trip(flavor, model, tmp_path)
    np.testing.assert_array_equal(flavor.predict(loaded, X), model.predict(X))
    assert flavor.describe(loaded)["estimator"].endswith("HistGradientBoostingClassifier")
    assert (tmp_path / "saved" / "model.skops").is_file()


def test_flavor_sklearn_refuses_a_pickle_posing_as_skops(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(IntegrityError, match="not a valid skops file"):
        SklearnFlavor().load_bytes(_hostile.pickle_payload(marker))
    assert not marker.exists()


def test_flavor_sklearn_refuses_a_pickle_smuggled_into_an_array(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(IntegrityError, match="could not be rebuilt"):
        SklearnFlavor().load_bytes(_hostile.skops_with_pickled_array(marker))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"), [("os", "system"), ("builtins", "eval"), ("mylib.features", "Winsor")]
)
def test_flavor_sklearn_refuses_untrusted_types_naming_them(module: str, name: str) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        SklearnFlavor().load_bytes(_hostile.skops_with_type(module, name))
    assert f"{module}.{name}" in str(caught.value)
    assert "STEWARD_TRUSTED_TYPES" in str(caught.value)


def test_flavor_sklearn_hands_skops_only_the_types_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = skops.io.dumps(HistGradientBoostingClassifier(max_iter=5).fit(X, Y))
    trusted_lists: list[object] = []
    real_loads = skops.io.loads

    def loads(data: bytes, trusted: object = None) -> object:
        trusted_lists.append(trusted)
        return real_loads(data, trusted=trusted)  # type: ignore[arg-type]

    monkeypatch.setattr(skops.io, "loads", loads)
    model = SklearnFlavor().load_bytes(data)
    assert trusted_lists == [["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]]
    assert model.predict(X).shape == (len(X),)  # type: ignore[attr-defined]


def test_flavor_sklearn_refuses_functions_outside_the_trusted_list(tmp_path: Path) -> None:
    model = make_pipeline(FunctionTransformer(func=os.system), LogisticRegression())
    folder = tmp_path / "m"
    folder.mkdir()
    metadata = SklearnFlavor().save(model, folder)
    with pytest.raises(PermissionDeniedError, match=r"posix\.system|nt\.system"):
        SklearnFlavor().load(folder, metadata)


def test_flavor_sklearn_extra_trusted_types_are_honoured(tmp_path: Path) -> None:
    model = make_pipeline(
        FunctionTransformer(func=_hostile.clip_negative), StandardScaler(), LogisticRegression()
    )
    model.fit(X, Y)
    folder = tmp_path / "m"
    folder.mkdir()
    metadata = SklearnFlavor().save(model, folder)
    with pytest.raises(PermissionDeniedError, match=r"tests\.registry\._hostile\.clip_negative"):
        SklearnFlavor().load(folder, metadata)
    loaded = SklearnFlavor(["tests.registry._hostile.clip_negative"]).load(folder, metadata)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))  # type: ignore[attr-defined]


def test_flavor_trusted_type_rules() -> None:
    assert is_trusted_type("sklearn.tree._tree.Tree")
    assert is_trusted_type("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
    assert not is_trusted_type("sklearn.utils.tests.test_pprint.LogisticRegression")
    assert not is_trusted_type("sklearn.nope.Missing")
    assert not is_trusted_type("sklearn.utils.check_array")  # a function, not a class
    assert is_trusted_type("numpy.dtype")
    assert is_trusted_type("custom.Thing", ["custom.Thing"])


def test_flavor_xgboost_round_trip(tmp_path: Path) -> None:
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)
    flavor = XGBoostFlavor()
    assert detect_flavor(model, builtin_flavors()).name == "xgboost"
    loaded = _round_trip(flavor, model, tmp_path)
    np.testing.assert_array_equal(flavor.predict(loaded, X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))  # type: ignore[attr-defined]


def test_flavor_xgboost_refuses_an_unknown_class(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="unknown class"):
        XGBoostFlavor().load(tmp_path, {"class": "Evil", "file": "model.json"})


def test_flavor_lightgbm_round_trip_keeps_class_labels(tmp_path: Path) -> None:
    labels = np.where(Y == 1, "fraud", "ok")
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, labels)
    flavor = LightGBMFlavor()
    assert detect_flavor(model, builtin_flavors()).name == "lightgbm"
    loaded = _round_trip(flavor, model, tmp_path)
    np.testing.assert_array_equal(flavor.predict(loaded, X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))  # type: ignore[attr-defined]
    regressor = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, X[:, 0])
    reloaded = _round_trip(flavor, regressor, tmp_path / "r")
    np.testing.assert_allclose(flavor.predict(reloaded, X), regressor.predict(X))
    with pytest.raises(InvalidInputError, match="not a classifier"):
        reloaded.predict_proba(X)  # type: ignore[attr-defined]


def double(values: np.ndarray) -> np.ndarray:
    return np.asarray(values) * 2


def test_flavor_python_needs_an_explicit_opt_in_to_load(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    metadata = PythonFlavor().save(double, folder)
    assert detect_flavor(LinearRegression(), builtin_flavors()).name == "sklearn"
    with pytest.raises(PermissionDeniedError, match="STEWARD_ALLOW_UNSAFE_FLAVORS"):
        PythonFlavor().load(folder, metadata)
    loaded = PythonFlavor(allow_unsafe=True).load(folder, metadata)
    np.testing.assert_array_equal(PythonFlavor().predict(loaded, np.array([1, 2])), [2, 4])


def test_flavor_python_refuses_what_cannot_be_pickled(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="module level"):
        PythonFlavor().save(lambda x: x, tmp_path)
    with pytest.raises(InvalidInputError, match="callable or have predict"):
        PythonFlavor().save(42, tmp_path)


def test_flavor_onnx_round_trip_runs_the_graph(tmp_path: Path) -> None:
    model = LogisticRegression().fit(X, Y)
    compiled = compile_to_onnx(model, X[:50])
    assert compiled.onnx_bytes is not None
    flavor = OnnxFlavor()
    loaded = _round_trip(flavor, compiled.onnx_bytes, tmp_path)
    np.testing.assert_array_equal(flavor.predict(loaded, X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-5)  # type: ignore[attr-defined]
    assert flavor.describe(loaded)["inputs"][0]["name"] == "X"


def test_flavor_onnx_refuses_bytes_that_are_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="ONNX model could not be loaded"):
        OnnxFlavor().save(b"not onnx at all", tmp_path)
    with pytest.raises(InvalidInputError, match="ModelProto or its serialized bytes"):
        OnnxFlavor().save(42, tmp_path)


def test_flavor_detection_explains_the_way_out() -> None:
    with pytest.raises(InvalidInputError, match="flavor='python' and unsafe=True"):
        detect_flavor(double, builtin_flavors())


def test_flavor_require_imports_a_module_not_yet_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "steward_probe_dependency.py").write_text(
        "import threading\nIMPORTED_BY = threading.current_thread().name\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "steward_probe_dependency", raising=False)
    module = require("steward_probe_dependency", flavor="probe", extra="ml")
    assert module is sys.modules["steward_probe_dependency"]
    assert module.IMPORTED_BY == "steward-import-steward_probe_dependency"  # a fresh stack
    assert require("steward_probe_dependency", flavor="probe", extra="ml") is module


def test_flavor_require_names_the_extra_for_a_missing_package() -> None:
    with pytest.raises(ConfigurationError, match=r"pip install 'steward\[ml\]'"):
        require("steward_no_such_package.io", flavor="probe", extra="ml")


def test_flavor_require_passes_on_a_failing_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "steward_broken_dependency.py").write_text(
        "raise RuntimeError('broken at import')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="broken at import"):
        require("steward_broken_dependency", flavor="probe", extra="ml")


def test_flavor_require_imports_a_main_thread_only_package_where_the_caller_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "steward_main_thread_dependency.py").write_text(
        "import signal, threading\n"
        "signal.signal(signal.SIGUSR2, signal.getsignal(signal.SIGUSR2))  # main thread only\n"
        "IMPORTED_BY = threading.current_thread().name\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "steward_main_thread_dependency", raising=False)
    module = require("steward_main_thread_dependency", flavor="probe", extra="ml")
    assert module.IMPORTED_BY == threading.current_thread().name
