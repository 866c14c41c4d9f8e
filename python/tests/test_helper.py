"""Tests of nginx_discovery.create_service_health_endpoint."""

import asyncio
import warnings

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Security, WebSocket
from fastapi.security import (
    APIKeyHeader,
    HTTPBasic,
    HTTPBearer,
    OAuth2PasswordBearer,
)
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from nginx_discovery import auth_dependency, collect_routes, create_service_health_endpoint

try:
    from a2wsgi import WSGIMiddleware
except ImportError:
    with warnings.catch_warnings():
        # Starlette's own bridge is deprecated in favour of a2wsgi
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.middleware.wsgi import WSGIMiddleware

bearer = HTTPBearer()
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
api_key = APIKeyHeader(name="X-API-Key")


def routes_of(app, query="?include_routes=true"):
    response = TestClient(app).get("/health" + query)
    assert response.status_code == 200, response.text
    return response.json()["routes"]


def by_path(routes, path, method=None):
    found = [
        r for r in routes
        if r["path"] == path and (method is None or method in r["methods"])
    ]
    assert len(found) == 1, (path, method, routes)
    return found[0]


# every method a route document can name
ALL_METHODS = ["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]


def answered_methods(client, path):
    """The methods the app really serves at ``path``: neither 404 nor 405."""
    return [m for m in ALL_METHODS if client.request(m, path).status_code not in (404, 405)]


class EchoMethod:
    """A plain ASGI app: answers every method with its name."""

    async def __call__(self, scope, receive, send):
        await PlainTextResponse(scope["method"])(scope, receive, send)


def make_app(**kwargs):
    app = FastAPI(**kwargs)
    create_service_health_endpoint(app, "svc", "1.2.3")
    return app


# --------------------------------------------------------------------------
# document and query flag


def test_basic_document_without_routes():
    app = make_app()

    @app.get("/items")
    def list_items():
        return []

    response = TestClient(app).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "svc", "version": "1.2.3"}
    assert response.headers["content-type"] == "application/json"


def test_full_route_entry():
    app = make_app()

    @app.get("/users/{user_id}", tags=["users"])
    def get_user(user_id: int, token=Depends(bearer)):
        """Fetch one user.

        More text that is not published.
        """
        return {}

    response = TestClient(app).get("/health?include_routes=true")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "service": "svc",
        "version": "1.2.3",
        "routes": [
            {
                "path": "/users/{user_id}",
                "methods": ["GET"],
                "name": "get_user",
                "description": "Fetch one user.",
                "tags": ["users"],
                "auth_required": True,
            }
        ],
    }


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes", "Yes"])
def test_include_routes_true_values(value):
    app = make_app()

    @app.get("/a")
    def a():
        return {}

    body = TestClient(app).get("/health", params={"include_routes": value}).json()
    assert [r["path"] for r in body["routes"]] == ["/a"]


@pytest.mark.parametrize("query", ["", "?include_routes=false", "?include_routes=0",
                                   "?include_routes=no", "?include_routes=",
                                   "?include_routes=bogus", "?other=true"])
def test_include_routes_other_values(query):
    app = make_app()

    @app.get("/a")
    def a():
        return {}

    response = TestClient(app).get("/health" + query)
    assert response.status_code == 200
    assert "routes" not in response.json()


def test_health_not_in_openapi_schema():
    app = make_app()

    @app.get("/a")
    def a():
        return {}

    schema = TestClient(app).get("/openapi.json").json()
    assert list(schema["paths"]) == ["/a"]


# --------------------------------------------------------------------------
# methods, names, descriptions, tags


def test_methods_sorted_as_declared():
    app = make_app()

    @app.api_route("/multi", methods=["put", "POST", "GET"])
    def multi():
        return {}

    @app.delete("/things/{thing_id}")
    def delete_thing(thing_id: str):
        return {}

    @app.head("/only-head")
    def only_head():
        return None

    def plain(request):
        return PlainTextResponse("x")

    app.add_route("/plain", plain)

    routes = routes_of(app)
    assert by_path(routes, "/multi")["methods"] == ["GET", "POST", "PUT"]
    assert by_path(routes, "/things/{thing_id}")["methods"] == ["DELETE"]
    assert by_path(routes, "/only-head")["methods"] == ["HEAD"]
    plain_entry = by_path(routes, "/plain")
    assert plain_entry["name"] == "plain"
    assert plain_entry["auth_required"] is False
    assert plain_entry["tags"] == []


def test_extension_methods_are_published():
    """WebDAV and custom methods are published like the nine."""
    app = make_app()

    @app.api_route("/dav/{item}", methods=["propfind", "MKCOL", "GET"])
    def dav(item: str):
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/dav/{item}")["methods"] == ["GET", "MKCOL", "PROPFIND"]
    client = TestClient(app)
    assert client.request("PROPFIND", "/dav/x").status_code == 200
    assert client.request("LOCK", "/dav/x").status_code == 405


def test_methods_are_those_the_app_answers():
    """HEAD is published where the route serves it, not wherever GET is."""
    app = make_app()

    @app.get("/api")  # FastAPI's APIRoute: HEAD is 405
    def api():
        return {}

    @app.api_route("/api-head", methods=["GET", "HEAD"])
    def api_head():
        return {}

    def plain(request):
        return PlainTextResponse("x")

    class Items(HTTPEndpoint):
        async def get(self, request):
            return PlainTextResponse("get")

        async def post(self, request):
            return PlainTextResponse("post")

    class HeadOnly(HTTPEndpoint):
        async def head(self, request):
            return PlainTextResponse("")

    app.add_route("/plain", plain)  # Starlette's Route adds HEAD to GET
    app.add_route("/plain-post", plain, methods=["POST"])
    app.add_route("/endpoint", Items)  # HEAD answered by get()
    app.add_route("/head-only", HeadOnly)
    # the route lets GET, HEAD and PUT through; Items has no put()
    app.router.routes.append(Route("/endpoint-limited", Items, methods=["GET", "PUT"]))
    app.router.routes.append(Route("/asgi", EchoMethod()))  # every method

    expected = {
        "/api": ["GET"],
        "/api-head": ["GET", "HEAD"],
        "/plain": ["GET", "HEAD"],
        "/plain-post": ["POST"],
        "/endpoint": ["GET", "HEAD", "POST"],
        "/head-only": ["HEAD"],
        "/endpoint-limited": ["GET", "HEAD"],
        "/asgi": ALL_METHODS,
    }
    routes = routes_of(app)
    client = TestClient(app)
    for path, methods in expected.items():
        assert by_path(routes, path)["methods"] == methods, path
        assert answered_methods(client, path) == methods, path


def test_same_path_different_methods_are_separate_entries():
    app = make_app()

    @app.get("/users")
    def list_users():
        return []

    @app.post("/users")
    def create_user():
        return {}

    routes = routes_of(app)
    assert [(r["path"], r["methods"], r["name"]) for r in routes] == [
        ("/users", ["GET"], "list_users"),
        ("/users", ["POST"], "create_user"),
    ]


def test_path_converters_kept():
    app = make_app()

    @app.get("/files/{file_path:path}")
    def read_file(file_path: str):
        return {}

    @app.get("/history/{user_id:int}")
    def history(user_id: int):
        return {}

    # {x:path} before a literal: the gateway's business, published as it is
    @app.get("/blobs/{blob_path:path}/meta")
    def blob_meta(blob_path: str):
        return {"path": blob_path}

    paths = [r["path"] for r in routes_of(app)]
    assert paths == ["/files/{file_path:path}", "/history/{user_id:int}",
                     "/blobs/{blob_path:path}/meta"]
    assert TestClient(app).get("/blobs/a/b/meta").json() == {"path": "a/b"}


def test_description_sources():
    app = make_app()

    @app.get("/doc")
    def with_doc():
        """

        First line after blank lines.
        Second line.
        """
        return {}

    @app.get("/explicit", description="Explicit description.")
    def explicit():
        """Docstring loses."""
        return {}

    @app.get("/none")
    def no_doc():
        return {}

    @app.get("/named", name="custom_name", summary="A summary")
    def named():
        """Named route."""
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/doc")["description"] == "First line after blank lines."
    assert by_path(routes, "/explicit")["description"] == "Explicit description."
    assert by_path(routes, "/none")["description"] == ""
    assert by_path(routes, "/named")["name"] == "custom_name"
    assert by_path(routes, "/named")["description"] == "Named route."


def test_tags_from_route_and_router():
    app = make_app()
    router = APIRouter(prefix="/orders", tags=["orders"])

    @router.get("/{order_id}", tags=["read"])
    def get_order(order_id: int):
        return {}

    app.include_router(router, tags=["shop"])

    @app.get("/untagged")
    def untagged():
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/orders/{order_id}")["tags"] == ["shop", "orders", "read"]
    assert by_path(routes, "/untagged")["tags"] == []


# --------------------------------------------------------------------------
# auth detection


def test_auth_direct_http_bearer_and_basic():
    app = make_app()
    basic = HTTPBasic()

    @app.get("/bearer")
    def with_bearer(creds=Depends(bearer)):
        return {}

    @app.get("/basic")
    def with_basic(creds=Security(basic)):
        return {}

    @app.get("/open")
    def open_route():
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/bearer")["auth_required"] is True
    assert by_path(routes, "/basic")["auth_required"] is True
    assert by_path(routes, "/open")["auth_required"] is False


def test_auth_through_nested_dependency_chain():
    app = make_app()

    def get_token(token: str = Depends(oauth2_scheme)):
        return token

    def get_current_user(token: str = Depends(get_token)):
        return {"token": token}

    def get_active_user(user=Depends(get_current_user)):
        return user

    def get_db():
        return "db"

    def get_repo(db=Depends(get_db)):
        return db

    @app.get("/me")
    def me(user=Depends(get_active_user)):
        return user

    @app.get("/repo")
    def repo(r=Depends(get_repo)):
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/me")["auth_required"] is True
    assert by_path(routes, "/repo")["auth_required"] is False


def test_auth_from_router_and_app_dependencies():
    def check_key(key: str = Depends(api_key)):
        return key

    app = make_app()
    secured = APIRouter(prefix="/admin", dependencies=[Depends(check_key)])

    @secured.get("/stats")
    def stats():
        return {}

    app.include_router(secured)
    included = APIRouter()

    @included.get("/reports")
    def reports():
        return {}

    app.include_router(included, prefix="/r", dependencies=[Depends(bearer)])

    @app.get("/public")
    def public():
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/admin/stats")["auth_required"] is True
    assert by_path(routes, "/r/reports")["auth_required"] is True
    assert by_path(routes, "/public")["auth_required"] is False

    global_app = FastAPI(dependencies=[Depends(bearer)])
    create_service_health_endpoint(global_app, "g", "1")

    @global_app.get("/anything")
    def anything():
        return {}

    # the health route itself does not take the app's dependencies
    assert by_path(routes_of(global_app), "/anything")["auth_required"] is True


def test_auth_api_key_header_and_decorator_dependencies():
    app = make_app()

    @app.get("/keyed")
    def keyed(key: str = Depends(api_key)):
        return {}

    @app.post("/decorated", dependencies=[Depends(api_key)])
    def decorated():
        return {}

    routes = routes_of(app)
    assert by_path(routes, "/keyed")["auth_required"] is True
    assert by_path(routes, "/decorated")["auth_required"] is True


def test_auth_detected_runtime_still_enforced():
    app = make_app()

    @app.get("/secret")
    def secret(creds=Depends(bearer)):
        return {"ok": True}

    client = TestClient(app)
    assert client.get("/secret").status_code == 403
    assert client.get("/secret", headers={"Authorization": "Bearer x"}).json() == {"ok": True}


def test_auth_required_is_what_the_app_enforces():
    """A scheme with auto_error=False is optional auth; a hand-written check
    is detected only when marked with auth_dependency."""
    optional_bearer = HTTPBearer(auto_error=False)

    def user_or_guest(creds=Depends(optional_bearer)):
        return creds

    def check_token(x_token: str = Header(None)):
        if x_token != "secret":
            raise HTTPException(401)

    class TokenChecker:
        def __call__(self, x_token: str = Header(None)):
            check_token(x_token)

    marked_check = auth_dependency(lambda x_token=Header(None): check_token(x_token))

    @auth_dependency
    def current_user(x_token: str = Header(None)):
        check_token(x_token)
        return "alice"

    def profile(user=Depends(current_user)):  # the mark counts when nested
        return user

    app = make_app()

    @app.get("/optional")
    def optional(user=Depends(user_or_guest)):
        return {}

    @app.get("/marked", dependencies=[Depends(marked_check)])
    def marked():
        return {}

    @app.get("/nested")
    def nested(p=Depends(profile)):
        return {}

    checked = APIRouter(dependencies=[Depends(auth_dependency(TokenChecker()))])

    @checked.get("/router")
    def router_route():
        return {}

    app.include_router(checked)

    @app.get("/unmarked", dependencies=[Depends(check_token)])
    def unmarked():
        return {}

    routes = routes_of(app)
    client = TestClient(app)
    for path in ("/optional", "/marked", "/nested", "/router"):
        rejected = client.get(path).status_code in (401, 403)
        assert by_path(routes, path)["auth_required"] is rejected, path
    assert client.get("/optional").status_code == 200
    assert client.get("/nested", headers={"X-Token": "secret"}).status_code == 200
    # the limit: an unmarked check cannot be told from any other dependency
    assert client.get("/unmarked").status_code == 401
    assert by_path(routes, "/unmarked")["auth_required"] is False


def test_auth_dependency_on_a_bound_method_is_refused():
    class Checker:
        def check(self):
            pass

    with pytest.raises(TypeError):
        auth_dependency(Checker().check)


# --------------------------------------------------------------------------
# websockets


def test_websocket_route_marked():
    app = make_app()

    @app.websocket("/ws/{room}")
    async def room_socket(websocket: WebSocket, room: str):
        """Room chat socket."""
        await websocket.accept()
        await websocket.send_text(room)
        await websocket.close()

    routes = routes_of(app)
    assert routes == [
        {
            "path": "/ws/{room}",
            "methods": ["GET"],
            "name": "room_socket",
            "description": "Room chat socket.",
            "tags": [],
            "auth_required": False,
            "websocket": True,
        }
    ]
    with TestClient(app).websocket_connect("/ws/lobby") as ws:
        assert ws.receive_text() == "lobby"


def test_plain_starlette_websocket_route_and_websocket_auth():
    app = make_app()

    async def raw_socket(websocket):
        await websocket.accept()
        await websocket.close()

    app.add_websocket_route("/raw", raw_socket)

    @app.websocket("/secure-ws")
    async def secure_ws(websocket: WebSocket, key: str = Depends(APIKeyHeader(name="X-Key"))):
        await websocket.accept()
        await websocket.close()

    routes = routes_of(app)
    raw = by_path(routes, "/raw")
    assert (raw["websocket"], raw["methods"], raw["auth_required"]) == (True, ["GET"], False)
    assert by_path(routes, "/secure-ws")["auth_required"] is True


# --------------------------------------------------------------------------
# mounts


def test_mounted_fastapi_sub_app_prefixed():
    app = make_app()
    sub = FastAPI()

    @sub.get("/items/{item_id}", tags=["sub"])
    def sub_item(item_id: int, creds=Depends(bearer)):
        """Sub item."""
        return {}

    @sub.get("/")
    def sub_root():
        return {}

    inner = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @inner.post("/deep")
    def deep():
        return {}

    sub.mount("/inner", inner)
    app.mount("/v2", sub)

    routes = routes_of(app)
    assert routes == [
        {
            "path": "/v2/items/{item_id}",
            "methods": ["GET"],
            "name": "sub_item",
            "description": "Sub item.",
            "tags": ["sub"],
            "auth_required": True,
        },
        {
            "path": "/v2/",
            "methods": ["GET"],
            "name": "sub_root",
            "description": "",
            "tags": [],
            "auth_required": False,
        },
        {
            "path": "/v2/inner/deep",
            "methods": ["POST"],
            "name": "deep",
            "description": "",
            "tags": [],
            "auth_required": False,
        },
    ]
    # the sub-app's /docs, /redoc and /openapi.json were filtered, and the
    # published paths really are served
    client = TestClient(app)
    assert client.post("/v2/inner/deep").status_code == 200
    assert client.get("/v2/items/3", headers={"Authorization": "Bearer t"}).status_code == 200


def test_mounted_sub_app_using_helper_does_not_publish_its_health():
    app = make_app()
    sub = FastAPI()
    create_service_health_endpoint(sub, "sub", "1")

    @sub.get("/x")
    def x():
        return {}

    app.mount("/sub", sub)
    assert [r["path"] for r in routes_of(app)] == ["/sub/x"]


def test_mount_with_route_list():
    def listing(request):
        """Listing."""
        return PlainTextResponse("x")

    app = make_app()
    app.router.routes.append(Mount("/legacy", routes=[Route("/list", listing)]))
    assert routes_of(app) == [
        {
            "path": "/legacy/list",
            "methods": ["GET", "HEAD"],
            "name": "listing",
            "description": "Listing.",
            "tags": [],
            "auth_required": False,
        }
    ]


def test_static_files_mount_catch_all(tmp_path):
    (tmp_path / "hello.txt").write_text("hi")
    app = make_app()
    app.mount("/static", StaticFiles(directory=str(tmp_path)), name="static")

    assert routes_of(app) == [
        {
            "path": "/static/{path:path}",
            "methods": ["GET", "HEAD"],
            "name": "static",
            "description": "",
            "tags": [],
            "auth_required": False,
        }
    ]
    assert TestClient(app).get("/static/hello.txt").text == "hi"


def test_unnamed_mount_of_plain_asgi_app():
    async def asgi_app(scope, receive, send):
        raise AssertionError("not called")

    app = make_app()
    app.mount("/raw", asgi_app)
    entry = by_path(routes_of(app), "/raw/{path:path}")
    assert entry["name"] == ""
    assert entry["methods"] == ALL_METHODS


def test_mounts_publish_what_they_answer(tmp_path):
    """Middleware is looked through; an app that cannot say which methods
    it serves is published with all of them, and only StaticFiles with GET
    and HEAD."""
    (tmp_path / "a.txt").write_text("a")

    def legacy(environ, start_response):
        """Legacy WSGI application."""
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["REQUEST_METHOD"].encode()]

    def listing(request):
        return PlainTextResponse("x")

    inner = Starlette(routes=[Route("/list", listing),
                              Route("/add", listing, methods=["POST"])])
    api = FastAPI()

    @api.post("/items")
    def create_item():
        return {}

    app = make_app()
    app.mount("/raw", EchoMethod())
    app.mount("/wsgi", WSGIMiddleware(legacy), name="legacy")
    app.mount("/wrapped", GZipMiddleware(inner))
    app.mount("/wrapped-api", GZipMiddleware(TrustedHostMiddleware(api, allowed_hosts=["*"])))
    app.mount("/static", GZipMiddleware(StaticFiles(directory=str(tmp_path))))

    routes = routes_of(app)
    assert [(r["path"], r["methods"]) for r in routes] == [
        ("/raw/{path:path}", ALL_METHODS),
        ("/wsgi/{path:path}", ALL_METHODS),
        ("/wrapped/list", ["GET", "HEAD"]),
        ("/wrapped/add", ["POST"]),
        ("/wrapped-api/items", ["POST"]),
        ("/static/{path:path}", ["GET", "HEAD"]),
    ]
    assert by_path(routes, "/wsgi/{path:path}")["name"] == "legacy"
    assert by_path(routes, "/wsgi/{path:path}")["description"] == "Legacy WSGI application."

    client = TestClient(app)
    for entry in routes:
        path = entry["path"].replace("{path:path}", "a.txt")
        assert answered_methods(client, path) == entry["methods"], path


def test_app_mounted_inside_itself():
    app = make_app()

    @app.get("/a")
    def a():
        return {}

    app.mount("/again", app)  # serves /again/a, /again/again/a...
    assert [(r["path"], r["methods"]) for r in routes_of(app)] == [
        ("/a", ["GET"]), ("/again/{path:path}", ALL_METHODS)]
    assert TestClient(app).get("/again/again/a").status_code == 200


# --------------------------------------------------------------------------
# internal routes


def test_internal_routes_filtered_default_urls():
    app = make_app()

    @app.get("/real")
    def real():
        return {}

    client = TestClient(app)
    for url in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(url).status_code == 200, url
    assert [r["path"] for r in routes_of(app)] == ["/real"]


def test_internal_routes_filtered_custom_urls():
    app = make_app(docs_url="/api/docs", redoc_url=None,
                   openapi_url="/api/schema.json",
                   swagger_ui_oauth2_redirect_url="/api/oauth2")

    # a user route at a default docs path is a real route here
    @app.get("/docs")
    def my_docs():
        return {}

    client = TestClient(app)
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/oauth2").status_code == 200
    assert [r["path"] for r in routes_of(app)] == ["/docs"]


def test_docs_disabled():
    app = make_app(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/only")
    def only():
        return {}

    assert [r["path"] for r in routes_of(app)] == ["/only"]


def test_users_own_routes_at_internal_paths_are_published():
    """Only the routes FastAPI and the helper installed are left out."""
    # FastAPI installs no docs without an OpenAPI URL: /docs and /redoc are the user's
    no_schema = make_app(openapi_url=None)

    @no_schema.get("/docs")
    def my_docs():
        return {"mine": True}

    @no_schema.get("/redoc")
    def my_redoc():
        return {"mine": True}

    assert [(r["path"], r["methods"]) for r in routes_of(no_schema)] == [
        ("/docs", ["GET"]), ("/redoc", ["GET"])]
    assert TestClient(no_schema).get("/docs").json() == {"mine": True}

    # Swagger UI disabled: a self-hosted one and its OAuth2 redirect are the user's
    own_swagger = make_app(docs_url=None)

    @own_swagger.get("/docs", include_in_schema=False)
    def swagger():
        return {}

    @own_swagger.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_redirect():
        return {}

    assert [r["path"] for r in routes_of(own_swagger)] == ["/docs", "/docs/oauth2-redirect"]

    # beside FastAPI's docs and the helper's GET /health, other methods there are the user's
    app = make_app()

    @app.post("/docs")
    def post_docs():
        return {"posted": True}

    @app.post("/health")
    def post_health():
        return {"posted": True}

    @app.get("/health")
    def shadowed_health():  # the helper's GET /health answers first
        return {}

    assert [(r["path"], r["methods"]) for r in routes_of(app)] == [
        ("/docs", ["POST"]), ("/health", ["POST"])]
    client = TestClient(app)
    assert client.post("/docs").json() == {"posted": True}
    assert client.post("/health").json() == {"posted": True}
    assert client.get("/health").json()["status"] == "healthy"
    assert client.get("/docs").status_code == 200  # FastAPI's, not published


# --------------------------------------------------------------------------
# replacing /health, late routes


def test_replaces_existing_health_route():
    app = FastAPI()

    @app.get("/health")
    def old_health():
        return {"old": True}

    @app.post("/health")
    def old_health_post():
        return {"old": True}

    def plain_health(request):
        return PlainTextResponse("old")

    app.add_route("/health", plain_health)  # GET and HEAD: replaced too

    @app.get("/a")
    def a():
        return {}

    TestClient(app).get("/openapi.json")  # caches a schema listing GET /health
    create_service_health_endpoint(app, "svc", "9")

    client = TestClient(app)
    assert client.get("/health").json() == {"status": "healthy", "service": "svc", "version": "9"}
    # a route for other methods is not replaced: it is the user's, and published
    assert client.post("/health").json() == {"old": True}
    health_routes = [r for r in app.routes if getattr(r, "path", None) == "/health"]
    assert [r.name for r in health_routes] == ["health", "old_health_post"]
    assert [(r["path"], r["methods"]) for r in routes_of(app)] == [
        ("/health", ["POST"]), ("/a", ["GET"])]
    assert list(client.get("/openapi.json").json()["paths"]["/health"]) == ["post"]


def test_calling_twice_keeps_one_health_route():
    app = FastAPI()
    create_service_health_endpoint(app, "first", "1")
    create_service_health_endpoint(app, "second", "2")
    assert len([r for r in app.routes if getattr(r, "path", None) == "/health"]) == 1
    assert TestClient(app).get("/health").json()["service"] == "second"


def test_health_not_shadowed_by_catch_all():
    app = FastAPI()

    @app.get("/{anything:path}")
    def catch_all(anything: str):
        return {"caught": anything}

    create_service_health_endpoint(app, "svc", "1")
    body = TestClient(app).get("/health?include_routes=1").json()
    assert body["status"] == "healthy"
    assert [r["path"] for r in body["routes"]] == ["/{anything:path}"]


def test_routes_added_after_the_call_appear():
    app = make_app()
    client = TestClient(app)
    assert client.get("/health?include_routes=true").json()["routes"] == []

    @app.get("/late")
    def late():
        """Added late."""
        return {}

    router = APIRouter()

    @router.post("/later", dependencies=[Depends(bearer)])
    def later():
        return {}

    app.include_router(router)
    app.mount("/assets", StaticFiles(directory=".", check_dir=False), name="assets")

    routes = client.get("/health?include_routes=true").json()["routes"]
    assert [(r["path"], r["methods"], r["auth_required"]) for r in routes] == [
        ("/late", ["GET"], False),
        ("/later", ["POST"], True),
        ("/assets/{path:path}", ["GET", "HEAD"], False),
    ]


def test_collect_routes_public_function():
    app = FastAPI()

    @app.get("/x")
    def x():
        return {}

    assert collect_routes(app) == [
        {"path": "/x", "methods": ["GET"], "name": "x", "description": "",
         "tags": [], "auth_required": False}
    ]


# --------------------------------------------------------------------------
# readiness


def test_readiness_true():
    app = FastAPI()
    create_service_health_endpoint(app, "svc", "1", readiness=lambda: True)
    response = TestClient(app).get("/health?include_routes=true")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "svc", "version": "1", "routes": []}


def test_readiness_false_is_503_unhealthy_without_routes():
    app = FastAPI()
    create_service_health_endpoint(app, "svc", "1", readiness=lambda: False)

    @app.get("/a")
    def a():
        return {}

    response = TestClient(app).get("/health?include_routes=true")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "service": "svc", "version": "1"}


def test_readiness_tuple_with_reason():
    app = FastAPI()
    create_service_health_endpoint(app, "svc", "1", readiness=lambda: (False, "db down"))
    response = TestClient(app).get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "service": "svc", "version": "1",
                               "reason": "db down"}

    ok_app = FastAPI()
    create_service_health_endpoint(ok_app, "svc", "1", readiness=lambda: (True, "fine"))
    assert TestClient(ok_app).get("/health").json() == {
        "status": "healthy", "service": "svc", "version": "1"}


def test_async_readiness():
    state = {"ready": False}

    async def ready():
        await asyncio.sleep(0)
        return state["ready"]

    app = FastAPI()
    create_service_health_endpoint(app, "svc", "1", readiness=ready)
    client = TestClient(app)
    assert client.get("/health").status_code == 503
    state["ready"] = True
    response = client.get("/health?include_routes=yes")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "svc", "version": "1", "routes": []}


def test_async_readiness_with_reason_and_raising_readiness():
    async def not_ready():
        return False, "warming up"

    app = FastAPI()
    create_service_health_endpoint(app, "svc", "1", readiness=not_ready)
    assert TestClient(app).get("/health").json()["reason"] == "warming up"

    def broken():
        raise RuntimeError("boom")

    broken_app = FastAPI()
    create_service_health_endpoint(broken_app, "svc", "1", readiness=broken)
    response = TestClient(broken_app).get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "service": "svc", "version": "1",
                               "reason": "readiness check failed: RuntimeError: boom"}


def test_etag_and_if_none_match():
    app = FastAPI()

    @app.get("/items/{item_id}")
    def get_item(item_id: int):
        return {}

    create_service_health_endpoint(app, "svc", "1.0")
    client = TestClient(app)

    first = client.get("/health?include_routes=true")
    etag = first.headers["etag"]
    assert first.status_code == 200
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34

    unchanged = client.get("/health?include_routes=true",
                           headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    # a document without routes is another document
    assert client.get("/health").headers["etag"] != etag

    @app.post("/items")
    def create_item():
        return {}

    changed = client.get("/health?include_routes=true",
                         headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert "/items" in [r["path"] for r in changed.json()["routes"]]
