"""The model registry: versions, safe packaging, signatures, compilation, lineage, cards."""

from steward.registry._cards import EDITABLE_SECTIONS, REQUIRED_SECTIONS, ModelCard
from steward.registry._compatibility import Compatibility, check_compatibility
from steward.registry._compile import CompileReport
from steward.registry._lifecycle import (
    AllowAllGate,
    TransitionGate,
    TransitionRequest,
)
from steward.registry._lineage import LineageEdge, LineageGraph, LineageNode
from steward.registry._loaded import LoadedModel
from steward.registry._models import (
    Compilation,
    DecisionMode,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    Stage,
    Transition,
)
from steward.registry._onnx import (
    OnnxCompilation,
    ParityReport,
    UnsupportedModelError,
    compile_to_onnx,
)
from steward.registry._service import RegistryService
from steward.registry._settings import RegistrySettings
from steward.registry._signatures import ColumnSpec, Signature, SignatureError, TensorSpec
from steward.registry.flavors import (
    DEFAULT_TRUSTED_TYPES,
    Flavor,
    LightGBMFlavor,
    OnnxFlavor,
    OnnxModel,
    PythonFlavor,
    SklearnFlavor,
    XGBoostFlavor,
    builtin_flavors,
)

__all__ = [
    "DEFAULT_TRUSTED_TYPES",
    "EDITABLE_SECTIONS",
    "REQUIRED_SECTIONS",
    "AllowAllGate",
    "ColumnSpec",
    "Compatibility",
    "Compilation",
    "CompileReport",
    "DecisionMode",
    "Flavor",
    "LightGBMFlavor",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "LoadedModel",
    "ModelCard",
    "ModelRef",
    "ModelVersion",
    "OnnxCompilation",
    "OnnxFlavor",
    "OnnxModel",
    "ParityReport",
    "PythonFlavor",
    "RegisteredModel",
    "RegistryService",
    "RegistrySettings",
    "RiskTier",
    "Signature",
    "SignatureError",
    "SklearnFlavor",
    "Stage",
    "TensorSpec",
    "Transition",
    "TransitionGate",
    "TransitionRequest",
    "UnsupportedModelError",
    "XGBoostFlavor",
    "builtin_flavors",
    "check_compatibility",
    "compile_to_onnx",
]
