"""Publish a FastAPI service's routes for nginx discovery-driven routing."""

from .health import auth_dependency, collect_routes, create_service_health_endpoint

__all__ = ["create_service_health_endpoint", "collect_routes", "auth_dependency"]
__version__ = "0.1.0"
