"""Serving: deployments, the gateway, routing, resilience, batching, cache, prediction log."""

from steward.serving._deployment_models import (
    Deployment,
    DeploymentRevision,
    DeploymentSettings,
    LogMode,
)
from steward.serving._deployments import DeploymentService
from steward.serving._gateway import create_app, create_app_from_env, error_response
from steward.serving._gateway_settings import GatewaySettings
from steward.serving._routing import Route, Router
from steward.serving._routing_spec import OVERRIDE_HEADER, RoutingSpec, StickyKey, Variant

__all__ = [
    "OVERRIDE_HEADER",
    "Deployment",
    "DeploymentRevision",
    "DeploymentService",
    "DeploymentSettings",
    "GatewaySettings",
    "LogMode",
    "Route",
    "Router",
    "RoutingSpec",
    "StickyKey",
    "Variant",
    "create_app",
    "create_app_from_env",
    "error_response",
]
