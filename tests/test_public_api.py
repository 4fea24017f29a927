"""Pin each context's public surface: a change here is a change users see."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "steward.core": [
        "BackendUnavailableError",
        "BaseStewardSettings",
        "Clock",
        "ConfigurationError",
        "ConflictError",
        "CoreSettings",
        "EncryptionKeyError",
        "FrozenClock",
        "IntegrityError",
        "InvalidInputError",
        "NotFoundError",
        "PermissionDeniedError",
        "SchemaVersionError",
        "StewardError",
        "SystemClock",
        "canonical_json",
        "config_file",
        "load_settings",
        "new_id",
        "sha256_file",
        "sha256_hex",
        "sha256_stream",
        "utc_now",
    ],
    "steward.cli": ["app", "main"],
    "steward.demo": ["DemoReport", "run_demo"],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_api_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name} is exported but missing"
