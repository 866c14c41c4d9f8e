"""The /health endpoint the nginx discovery module polls.

``GET /health`` answers ``{"status": "healthy", "service": ..., "version": ...}``;
``GET /health?include_routes=true`` adds ``"routes"``, one entry per route the
service serves::

    {"path": "/users/{user_id}", "methods": ["GET"], "name": "get_user",
     "description": "...", "tags": ["users"], "auth_required": true}

WebSocket routes also carry ``"websocket": true`` (methods ``["GET"]``).

``methods`` are the methods the route answers, as FastAPI and Starlette
decide them: an APIRoute publishes its declared methods, so ``@app.get``
publishes ``["GET"]`` and FastAPI answers HEAD there with 405; a Starlette
Route for GET publishes ``["GET", "HEAD"]``; an HTTPEndpoint publishes the
handlers it defines, and HEAD when it has ``get``; a Route with an ASGI
endpoint and no ``methods=`` publishes every method.  The gateway routes
HEAD wherever GET is published, so a HEAD for an APIRoute still reaches the
service, which answers 405 itself.

A mounted FastAPI or Starlette app or Router is published route by route
under the mount's path, also through middleware around it (each layer keeps
the next in ``.app``).  Any other mounted app cannot say what it serves: a
plain ASGI app or a WSGI bridge is published as ``<mount>/{path:path}`` with
every method, StaticFiles with GET and HEAD, the only ones it answers.

``auth_required`` is true when a dependency anywhere in the route's tree
(its own, its router's, the app's, nested) rejects a request that brings no
credentials, as far as that can be known: a FastAPI security scheme
(a SecurityBase: HTTPBearer, OAuth2PasswordBearer, APIKeyHeader...) with
``auto_error=True``, the default, or a dependency marked with
``auth_dependency``.  A scheme with ``auto_error=False`` is optional auth:
not required.  A hand-written check that is not marked cannot be told from
any other dependency and is not detected; nor is auth done by middleware
(mark a dependency of the routes it guards).

Left out are only the routes FastAPI and the helper installed: the helper's
``GET /health`` and the docs routes FastAPI's setup() added (OpenAPI schema,
Swagger UI and its OAuth2 redirect, ReDoc).  A user's own route at one of
those paths is published: ``POST /health``, or ``/docs`` in an app with
``openapi_url=None`` or ``docs_url=None``.

The routes are read from the application at every request, so routes added
after the helper was called are published too.  The answer carries an ETag:
a poll with a matching ``If-None-Match`` gets 304, and the gateway does not
parse an unchanged document again.
"""

import functools
import hashlib
import inspect
from enum import Enum
from types import CodeType
from typing import (
    Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple,
    TypeVar, Union,
)

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router, WebSocketRoute
from starlette.staticfiles import StaticFiles

from .registry import Registration

__all__ = ["create_service_health_endpoint", "collect_routes", "auth_dependency"]

HEALTH_PATH = "/health"
# what middleware is unwrapped to reach: apps that say what they serve
_KNOWN_APPS = (Starlette, Router, StaticFiles)
_TRUE_VALUES = {"true", "1", "yes"}
# set on the route the helper installs, so that it never publishes itself
_MARKER = "_nginx_discovery_health"
# set by auth_dependency on a dependency that enforces authentication
_AUTH_MARKER = "_nginx_discovery_auth"
# every method a route document can name: what is published for an ASGI
# app that answers any method (a Route with an ASGI endpoint and no methods=)
_ALL_METHODS = (
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
)
# what StaticFiles answers; anything else is 405
_STATIC_METHODS = ("GET", "HEAD")
# the handlers HTTPEndpoint.dispatch looks for
_HTTP_ENDPOINT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

Readiness = Callable[[], Any]
_Dependency = TypeVar("_Dependency")


def create_service_health_endpoint(
    app: FastAPI,
    name: str,
    version: str,
    *,
    readiness: Optional[Readiness] = None,
    registry: Optional[Union[str, Sequence[str]]] = None,
    advertise: Optional[str] = None,
    ttl: int = 10,
    registry_prefix: str = "/nginx-discovery/",
    registry_options: Optional[Dict[str, Any]] = None,
) -> APIRoute:
    """Install ``GET /health`` on ``app``, replacing any existing one.

    With ``registry`` (an etcd member's client URL, or a list of them) the
    service also registers itself for gateways with ``discovery_registry``:
    at ``registry_prefix + "services/" + name``, ``{"url": advertise}`` plus
    ``registry_options`` (``{"interval": "5s"}``...), with a lease of ``ttl``
    seconds, once it answers ``advertise + "/health"``; the key is deleted
    on shutdown.  See ``nginx_discovery.registry``; the Registration is
    ``app.state.nginx_discovery_registration``.

    An existing route at /health for GET alone (HEAD aside) is removed; one
    for other methods, a user's ``POST /health`` say, is kept and published.

    ``readiness`` is an optional callable, sync or async, returning a bool or
    a ``(bool, reason)`` tuple; when it reports not ready (or raises), the
    answer is HTTP 503 ``{"status": "unhealthy", ...}`` without routes.
    Returns the installed route.
    """

    async def health(request: Request) -> Response:
        headers = {"Cache-Control": "no-store"}
        body: Dict[str, Any] = {"service": name, "version": version}
        if readiness is not None:
            ready, reason = await _check_readiness(readiness)
            if not ready:
                body = {"status": "unhealthy", **body}
                if reason is not None:
                    body["reason"] = str(reason)
                return JSONResponse(body, status_code=503, headers=headers)
        body = {"status": "healthy", **body}
        flag = request.query_params.get("include_routes", "")
        if flag.strip().lower() in _TRUE_VALUES:
            body["routes"] = collect_routes(app)
        response = JSONResponse(body, headers=headers)
        etag = '"%s"' % hashlib.sha256(response.body).hexdigest()[:32]
        headers["ETag"] = etag
        if etag in _entity_tags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        response.headers["ETag"] = etag
        return response

    if registry is not None:
        if not advertise:
            raise ValueError("registry= needs advertise=, the URL gateways poll")
        registration = Registration(registry, name, advertise, ttl=ttl,
                                    prefix=registry_prefix,
                                    options=registry_options)
        app.state.nginx_discovery_registration = registration
        app.add_event_handler("startup", registration.start)
        app.add_event_handler("shutdown", registration.stop)

    app.router.routes[:] = [r for r in app.router.routes if not _is_health_endpoint(r)]
    route = APIRoute(
        HEALTH_PATH,
        health,
        methods=["GET"],
        name="health",
        include_in_schema=False,
        dependency_overrides_provider=app,
    )
    setattr(route, _MARKER, True)
    # first, so that no catch-all route of the application shadows it
    app.router.routes.insert(0, route)
    # a schema generated before still lists a replaced /health route
    app.openapi_schema = None
    return route


def _is_health_endpoint(route: BaseRoute) -> bool:
    """An earlier health endpoint, which the helper's route replaces: at
    /health for GET alone (Starlette adds HEAD), so that the helper's route,
    first, would leave it nothing to serve."""
    methods = getattr(route, "methods", None)
    return (
        isinstance(route, Route)
        and route.path == HEALTH_PATH
        and methods is not None
        and "GET" in methods
        and methods <= {"GET", "HEAD"}
    )


def _entity_tags(header: str) -> Set[str]:
    """The tags of an If-None-Match header, weak ones compared as strong."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def collect_routes(app: Any) -> List[Dict[str, Any]]:
    """The route entries of ``app`` (a FastAPI or Starlette app or Router)."""
    out: List[Dict[str, Any]] = []
    app = _unwrap_middleware(app)
    _walk(_routes_of(app) or [], "", app, frozenset(), out)
    return out


def auth_dependency(dependency: _Dependency) -> _Dependency:
    """Mark a hand-written dependency that rejects unauthenticated requests.

    Every route with it anywhere in its dependency tree (its own, its
    router's or the app's dependencies, or nested in another dependency) is
    then published with ``"auth_required": true``.  Use it as a decorator on
    a function, or call it on a class or a callable instance::

        @auth_dependency
        def verify_token(x_token: str = Header(None)):
            if x_token != SECRET:
                raise HTTPException(401)

    FastAPI's security schemes need no mark.  Returns ``dependency``.
    """
    try:
        setattr(dependency, _AUTH_MARKER, True)
    except AttributeError:  # a bound method, say
        raise TypeError(f"cannot mark {dependency!r}; mark its function") from None
    return dependency


# --------------------------------------------------------------------------
# route walking


def _walk(
    routes: Iterable[BaseRoute],
    prefix: str,
    app: Any,
    outer: FrozenSet[int],
    out: List[Dict[str, Any]],
) -> None:
    """Describe the ``routes`` of ``app``; ``outer`` holds the ids of the apps
    that mount it, to stop at an app mounted inside itself."""
    outer = outer | {id(app)}
    # the methods the helper's route answers at its path, before any later
    # route there (Starlette takes the first route that matches)
    answered_by_helper: Dict[str, Set[str]] = {}
    for route in routes:
        if getattr(route, _MARKER, False):
            answered_by_helper[route.path] = set(route.methods or ())
            continue
        if isinstance(route, Mount):
            _walk_mount(route, prefix, outer, out)
            continue
        if not _is_endpoint_route(route):
            continue  # Host and custom routes: nothing we can describe
        if _installed_by_fastapi(app, route):
            continue
        entry = _describe(route, prefix + route.path)
        shadowed = answered_by_helper.get(route.path)
        if shadowed and not entry.get("websocket"):
            entry["methods"] = [m for m in entry["methods"] if m not in shadowed]
            if not entry["methods"]:
                continue
        out.append(entry)


def _walk_mount(
    mount: Mount, prefix: str, outer: FrozenSet[int], out: List[Dict[str, Any]]
) -> None:
    path = prefix + mount.path
    # Starlette keeps the mounted app in _base_app (app may be wrapped in
    # the mount's middleware); Mount.routes hides whether it has routes
    app = _unwrap_middleware(getattr(mount, "_base_app", mount.app))
    routes = _routes_of(app)
    # an app mounted inside itself serves its routes again below the mount,
    # without end: it is published like an app whose routes are unknown
    if routes is not None and id(app) not in outer:
        _walk(routes, path, app, outer, out)
        return
    # an app whose routes cannot be known may answer any method on any path
    # below the mount; only StaticFiles is known to answer GET and HEAD alone
    methods = _STATIC_METHODS if isinstance(app, StaticFiles) else _ALL_METHODS
    out.append(
        {
            "path": path + "/{path:path}",
            "methods": list(methods),
            "name": mount.name or "",
            "description": _first_line(_doc(app)),
            "tags": [],
            "auth_required": False,
        }
    )


def _unwrap_middleware(app: Any) -> Any:
    """The app under any middleware around it: each layer keeps the next in
    ``.app`` (Starlette's middleware, a WSGI bridge's application)."""
    seen = set()
    while not isinstance(app, _KNOWN_APPS) and id(app) not in seen:
        seen.add(id(app))
        inner = getattr(app, "app", None)
        if inner is None:
            break
        app = inner
    return app


def _routes_of(app: Any) -> Optional[List[BaseRoute]]:
    # only Starlette's own routes say what they serve: another framework's
    # "routes" (a Bottle app's, say) would read as nothing served
    if isinstance(app, (Starlette, Router)):
        return list(app.routes)
    return None


def _installed_by_fastapi(app: Any, route: BaseRoute) -> bool:
    """Whether ``route`` is a docs route FastAPI's setup() added to ``app``.

    It sits at one of the app's docs URLs and its endpoint is a function
    setup() defines: a user's own ``/docs`` (with ``docs_url=None``, say) or
    ``POST /openapi.json`` is neither, and is published.
    """
    if not isinstance(app, FastAPI):
        return False
    urls = (app.openapi_url, app.docs_url, app.redoc_url,
            app.swagger_ui_oauth2_redirect_url)
    if route.path not in urls:
        return False
    code = getattr(_unwrap(getattr(route, "endpoint", None)), "__code__", None)
    return code in _setup_functions(type(app))


@functools.lru_cache(maxsize=None)
def _setup_functions(app_type: type) -> FrozenSet[CodeType]:
    """The code of the functions setup() defines, FastAPI's own or an
    override's: the docs endpoints.  No function of the user's has it."""
    codes: Set[CodeType] = set()
    for cls in app_type.__mro__:
        setup = getattr(cls.__dict__.get("setup"), "__code__", None)
        if setup is not None:
            codes.update(c for c in setup.co_consts if isinstance(c, CodeType))
    return frozenset(codes)


def _is_endpoint_route(route: BaseRoute) -> bool:
    return isinstance(route, (Route, WebSocketRoute))


def _describe(route: BaseRoute, path: str) -> Dict[str, Any]:
    websocket = isinstance(route, WebSocketRoute)
    entry: Dict[str, Any] = {
        "path": path,
        "methods": ["GET"] if websocket else _methods(route),
        "name": route.name or "",
        "description": _description(route),
        "tags": [_tag(t) for t in getattr(route, "tags", None) or []],
        "auth_required": _requires_auth(getattr(route, "dependant", None)),
    }
    if websocket:
        entry["websocket"] = True
    return entry


def _methods(route: Route) -> List[str]:
    """The methods ``route`` answers, HEAD included only where it is served.

    ``route.methods`` is what the route lets through: Starlette's Route adds
    HEAD wherever GET is, FastAPI's APIRoute keeps its methods as declared
    (an APIRoute for GET answers HEAD with 405), and None lets every method
    reach the endpoint.  An HTTPEndpoint then answers only those it defines.
    """
    methods = set(route.methods) if route.methods is not None else set(_ALL_METHODS)
    endpoint = _unwrap(route.endpoint)
    if inspect.isclass(endpoint) and issubclass(endpoint, HTTPEndpoint):
        methods &= _endpoint_methods(endpoint)
    return sorted(m.upper() for m in methods)


def _endpoint_methods(endpoint: type) -> Set[str]:
    methods = {m for m in _HTTP_ENDPOINT_METHODS if getattr(endpoint, m.lower(), None)}
    # HTTPEndpoint.dispatch answers HEAD with get() when there is no head()
    if "GET" in methods:
        methods.add("HEAD")
    return methods


def _description(route: BaseRoute) -> str:
    doc = _doc(_unwrap(getattr(route, "endpoint", None)))
    explicit = getattr(route, "description", None)
    # FastAPI fills APIRoute.description with the whole docstring (cut at
    # \f) when no description= was given; only an explicit one wins
    if explicit and explicit != doc.split("\f")[0].strip():
        return explicit
    return _first_line(doc)


def _doc(obj: Any) -> str:
    if obj is None:
        return ""
    # functions, methods and endpoint classes; not instances (StaticFiles)
    plain = inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)
    doc = obj.__doc__ if plain else None
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _first_line(doc: str) -> str:
    for line in doc.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _unwrap(endpoint: Any) -> Any:
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return endpoint


def _tag(tag: Any) -> str:
    return str(tag.value) if isinstance(tag, Enum) else str(tag)


def _requires_auth(dependant: Any) -> bool:
    """True when a dependency anywhere in the tree rejects a request that
    brings no credentials: a FastAPI security scheme (SecurityBase) with
    ``auto_error=True``, the default, or a dependency marked with
    ``auth_dependency``.

    A scheme with ``auto_error=False`` lets such a request through (optional
    auth).  Router- and app-level dependencies are part of route.dependant,
    so the walk sees them too.
    """
    stack, seen = [dependant], set()
    while stack:
        d = stack.pop()
        if d is None or id(d) in seen:
            continue
        seen.add(id(d))
        call = _unwrap(getattr(d, "call", None))
        # a scheme of the user's own without auto_error is taken to enforce
        if isinstance(call, SecurityBase) and getattr(call, "auto_error", True):
            return True
        if getattr(call, _AUTH_MARKER, False) is True:
            return True
        stack.extend(getattr(d, "dependencies", None) or [])
    return False


# --------------------------------------------------------------------------
# readiness


async def _check_readiness(readiness: Readiness) -> Tuple[bool, Optional[Any]]:
    try:
        if _is_async_callable(readiness):
            result = await readiness()
        else:
            result = await run_in_threadpool(readiness)
            if inspect.isawaitable(result):
                result = await result
    except Exception as exc:  # a failing check means not ready
        return False, f"readiness check failed: {type(exc).__name__}: {exc}"
    if isinstance(result, tuple):
        if not result:
            return False, None
        return bool(result[0]), (result[1] if len(result) > 1 else None)
    return bool(result), None


def _is_async_callable(obj: Any) -> bool:
    obj = _unwrap(obj)
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)
    )
