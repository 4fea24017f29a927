"""Serving: deployments, the gateway, routing, resilience, batching, cache, prediction log."""

from steward.serving._bandit import BanditPolicy, EpsilonGreedy, ThompsonSampling
from steward.serving._bandit_store import (
    ArmStats,
    BanditStateStore,
    InMemoryBanditStateStore,
    SqlBanditStateStore,
)
from steward.serving._batching import BatchOutputError, BatchStats, MicroBatcher
from steward.serving._cache import CacheStats, ResponseCache
from steward.serving._canary import CanaryAnalysis, CanaryMetrics, Decision
from steward.serving._canary_plan import CanaryPlan, CanaryState
from steward.serving._canary_service import CanaryReport, CanaryService
from steward.serving._canary_store import CanaryRecord
from steward.serving._deployment_models import (
    Deployment,
    DeploymentRevision,
    DeploymentSettings,
    LogMode,
)
from steward.serving._deployments import DeploymentService
from steward.serving._fallback import (
    ConstantFallback,
    Fallback,
    LastKnownGood,
    ThresholdRule,
    parse_fallback,
)
from steward.serving._gateway import create_app, create_app_from_env, error_response
from steward.serving._gateway_settings import GatewaySettings
from steward.serving._limits import (
    AdmissionController,
    EarlyRetryGuard,
    RateLimiter,
    TokenBucket,
)
from steward.serving._predlog import (
    FeedbackRecord,
    PredictionArchive,
    PredictionLog,
    PredictionLogSettings,
    PredictionRecord,
)
from steward.serving._resilience import (
    CircuitBreaker,
    CircuitOpenError,
    EarlyRetryError,
    ModelTimeoutError,
    OverloadedError,
    RateLimitedError,
    RetryLaterError,
)
from steward.serving._routing import Route, Router
from steward.serving._routing_spec import OVERRIDE_HEADER, RoutingSpec, StickyKey, Variant
from steward.serving._runtime import ModelFailedError
from steward.serving._wire import RequestProblemError

__all__ = [
    "OVERRIDE_HEADER",
    "AdmissionController",
    "ArmStats",
    "BanditPolicy",
    "BanditStateStore",
    "BatchOutputError",
    "BatchStats",
    "CacheStats",
    "CanaryAnalysis",
    "CanaryMetrics",
    "CanaryPlan",
    "CanaryRecord",
    "CanaryReport",
    "CanaryService",
    "CanaryState",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConstantFallback",
    "Decision",
    "Deployment",
    "DeploymentRevision",
    "DeploymentService",
    "DeploymentSettings",
    "EarlyRetryError",
    "EarlyRetryGuard",
    "EpsilonGreedy",
    "Fallback",
    "FeedbackRecord",
    "GatewaySettings",
    "InMemoryBanditStateStore",
    "LastKnownGood",
    "LogMode",
    "MicroBatcher",
    "ModelFailedError",
    "ModelTimeoutError",
    "OverloadedError",
    "PredictionArchive",
    "PredictionLog",
    "PredictionLogSettings",
    "PredictionRecord",
    "RateLimitedError",
    "RateLimiter",
    "RequestProblemError",
    "ResponseCache",
    "RetryLaterError",
    "Route",
    "Router",
    "RoutingSpec",
    "SqlBanditStateStore",
    "StickyKey",
    "ThompsonSampling",
    "ThresholdRule",
    "TokenBucket",
    "Variant",
    "create_app",
    "create_app_from_env",
    "error_response",
    "parse_fallback",
]
