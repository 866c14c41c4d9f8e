# Routing: precedence, typed parameters, methods, errors, variables.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

our $HttpConfig = <<'_EOC_';
    discovery_service chat  http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    discovery_service users http://127.0.0.1:$TEST_NGINX_RAND_PORT_2;

    upstream users {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health {
            default_type application/json;
            return 200 '{"status": "healthy", "service": "chat", "version": "1.0",
              "routes": [
                {"path": "/chat/intelligent", "methods": ["POST"], "name": "intelligent_chat",
                 "description": "chat", "tags": ["chat"], "auth_required": true},
                {"path": "/chat/history/{user_id:int}", "methods": ["GET"]},
                {"path": "/chat/rooms/{room}", "methods": ["GET", "PUT"]},
                {"path": "/files/readme", "methods": ["GET"]},
                {"path": "/dav/{p:path}", "methods": ["GET", "PROPFIND", "mkcol"]},
                {"path": "/blobs/{p:path}/meta", "methods": ["GET"]}
              ]}';
        }
        location / {
            return 200 "chat $request_method $request_uri\n";
        }
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        location = /health {
            default_type application/json;
            return 200 '{"status": "ok", "service": "users", "version": 2,
              "extra": {"nested": [1, {"deep": true}]},
              "routes": [
                {"path": "/users", "methods": ["GET", "POST"], "name": "users"},
                {"path": "/users/me", "methods": ["GET"], "auth_required": true},
                {"path": "/users/{user_id}", "methods": ["get", "DELETE"], "unknown": 1},
                {"path": "/chat/history/{name}", "methods": ["GET"]},
                {"path": "/chat/rooms/{name}", "methods": ["GET"]},
                {"path": "/items/{id:uuid}", "methods": ["GET"]},
                {"path": "/prices/{value:float}", "methods": ["GET"]},
                {"path": "/files/{rest:path}", "methods": ["GET"]},
                {"path": "/bad/{x", "methods": ["GET"]},
                {"path": 42},
                "not an object",
                {"path": "/blobs/{name}/meta", "methods": ["GET"]}
              ]}';
        }
        location / {
            return 200 "users $request_method $request_uri\n";
        }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        add_header X-Service $discovery_service;
        add_header X-Upstream $discovery_upstream;
        add_header X-Route $discovery_route;
        add_header X-Auth $discovery_route_auth;
    }

    location = /_discovery {
        discovery_status;
    }
_EOC_

use_defaults(
    http_config => $HttpConfig,
    config => $Config,
    init => "DiscoveryTest::wait_ready()",
);

run_tests();

__DATA__

=== TEST 1: a literal route goes to its service, variables set
--- request
POST /chat/intelligent
hello
--- response_headers
X-Service: chat
X-Route: /chat/intelligent
X-Auth: 1
--- response_headers_like
X-Upstream: 127\.0\.0\.1:\d+
--- response_body
chat POST /chat/intelligent



=== TEST 2: the query string is ignored for matching and forwarded untouched
--- request
GET /chat/rooms/lobby?x=1&y=%20z&x=2
--- response_headers
X-Route: /chat/rooms/{room}
!X-Auth
--- response_body
chat GET /chat/rooms/lobby?x=1&y=%20z&x=2



=== TEST 3: a literal segment beats a parameter; an upstream block is used by name
--- request eval
["GET /users/me", "GET /users/42"]
--- response_headers eval
["X-Route: /users/me\nX-Auth: 1\nX-Upstream: users",
 "X-Route: /users/{user_id}\n!X-Auth\nX-Upstream: users"]
--- response_body eval
["users GET /users/me\n", "users GET /users/42\n"]



=== TEST 4: a typed parameter beats a plain one, across services
--- request eval
["GET /chat/history/42", "GET /chat/history/bob"]
--- response_headers eval
["X-Route: /chat/history/{user_id:int}", "X-Route: /chat/history/{name}"]
--- response_body eval
["chat GET /chat/history/42\n", "users GET /chat/history/bob\n"]



=== TEST 5: uuid and float converters match only their own shapes
--- request eval
["GET /items/0f8fad5b-d9cb-469f-a165-70867728950e",
 "GET /items/not-a-uuid",
 "GET /prices/12.50",
 "GET /prices/12",
 "GET /prices/ab"]
--- error_code eval
[200, 404, 200, 200, 404]
--- response_headers eval
["X-Route: /items/{id:uuid}", "", "X-Route: /prices/{value:float}",
 "X-Route: /prices/{value:float}", ""]



=== TEST 6: {x:path} takes the rest of the path and loses to a literal
--- request eval
["GET /files/readme", "GET /files/a/b/c.txt", "GET /files/"]
--- response_body eval
["chat GET /files/readme\n", "users GET /files/a/b/c.txt\n",
 "users GET /files/\n"]



=== TEST 7: HEAD goes wherever GET does
--- request
HEAD /users/42
--- error_code: 200
--- response_headers
X-Service: users
X-Route: /users/{user_id}



=== TEST 8: OPTIONS goes to the path's owner even when not published
--- request
OPTIONS /chat/history/7
--- error_code: 200
--- response_body
chat OPTIONS /chat/history/7



=== TEST 9: a known path with an unpublished method is 405 with Allow
--- request
PUT /users/42
--- error_code: 405
--- response_headers
Allow: GET, HEAD, DELETE, OPTIONS
Content-Type: application/json
--- response_body
{"detail": "Method not allowed", "path": "/users/42", "service": "users", "allow": "GET, HEAD, DELETE, OPTIONS"}



=== TEST 10: an unknown path is 404 with a JSON body
--- request
GET /nowhere/at/all?q=1
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body
{"detail": "Endpoint not available", "path": "/nowhere/at/all"}



=== TEST 11: the 404 body stays valid JSON whatever the path holds
--- config
    location / {
        # escaped control characters are not canonical: let them through
        discovery_noncanonical pass;
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /a%22b%5Cc%01d%FFe%09
--- error_code: 404
--- response_body
{"detail": "Endpoint not available", "path": "/a\"b\\c\u0001d\ufffde\t"}



=== TEST 12: same shape claimed twice: the first configured service wins, warned
--- request
GET /chat/rooms/lobby
--- response_body
chat GET /chat/rooms/lobby
--- error_log
route conflict
/chat/rooms/{name}



=== TEST 13: malformed route entries are rejected with a warning, the rest kept
--- request
GET /users
--- response_body
users GET /users
--- error_log eval
[qr/\[warn\].*route "\/bad\/\{x" of "users" rejected: route #8: invalid template/,
 qr/\[warn\].*route "" of "users" rejected: route #9: "path" is not a string/,
 qr/\[warn\].*route "" of "users" rejected: route #10: not an object/]



=== TEST 14: error_page takes over the module's errors
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        error_page 404 @missing;
    }
    location @missing {
        return 404 "custom not found\n";
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /nowhere
--- error_code: 404
--- response_body
custom not found



=== TEST 15: discovery_route off leaves the location alone, and the variables empty
--- config
    location / {
        discovery_route off;
        return 200 "service=$discovery_service route=$discovery_route\n";
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["GET /users/7", "GET /nowhere"]
--- error_code eval
[200, 200]
--- response_body eval
["service= route=\n", "service= route=\n"]



=== TEST 16: a request body is proxied with the request
--- request
POST /users
{"name": "alice"}
--- more_headers
Content-Type: application/json
--- response_body
users POST /users



=== TEST 17: only a GET is a websocket upgrade: other methods keep their check
--- request eval
["DELETE /chat/history/bob", "POST /chat/history/bob", "GET /chat/history/bob"]
--- more_headers
Upgrade: websocket
--- error_code eval
[405, 405, 200]
--- response_body_like eval
["Method not allowed", "Method not allowed", "^users GET /chat/history/bob\n"]



=== TEST 18: a rewrite is routed by the new URI; nothing is decided before
--- config
    set $before "$discovery_route";
    location / {
        discovery_route on;
        rewrite ^/chat/rooms/(.*)$ /users/$1 break;
        proxy_pass http://$discovery_upstream;
        add_header X-Before $before;
        add_header X-Route $discovery_route;
        add_header X-Service $discovery_service;
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /chat/rooms/lobby
--- response_headers
!X-Before
X-Route: /users/{user_id}
X-Service: users
--- response_body
users GET /users/lobby



=== TEST 19: a path nothing has goes to the route with its trailing slash toggled, for the service to redirect
--- request eval
["GET /users/42/", "POST /users/", "GET /nowhere/"]
--- error_code eval
[200, 200, 404]
--- response_headers eval
["X-Route: /users/{user_id}", "X-Route: /users", ""]
--- response_body_like eval
["^users GET /users/42/\n", "^users POST /users/\n", "Endpoint not available"]



=== TEST 20: {x:path} in the middle takes what lies between, after a plain parameter
--- request eval
["GET /blobs/a/b/c/meta", "GET /blobs/x/meta", "GET /blobs/meta/meta/meta",
 "GET /blobs/a/b/meta/", "GET /blobs/a/b", "GET /blobs/meta",
 "OPTIONS /blobs/a/b/meta"]
--- error_code eval
[200, 200, 200, 200, 404, 404, 200]
--- response_headers eval
["X-Route: /blobs/{p:path}/meta", "X-Route: /blobs/{name}/meta",
 "X-Route: /blobs/{p:path}/meta", "X-Route: /blobs/{p:path}/meta", "", "",
 "X-Route: /blobs/{p:path}/meta"]
--- response_body_like eval
["^chat GET /blobs/a/b/c/meta\n", "^users GET /blobs/x/meta\n",
 "^chat GET /blobs/meta/meta/meta\n", "^chat GET /blobs/a/b/meta/\n",
 "Endpoint not available", "Endpoint not available",
 "^chat OPTIONS /blobs/a/b/meta\n"]



=== TEST 21: a plain parameter before {x:path} in the middle is an overlap, warned: GET and its preflights
--- request
OPTIONS /blobs/x/meta
--- response_headers
X-Route: /blobs/{name}/meta
--- response_body
users OPTIONS /blobs/x/meta
--- error_log
route overlap: GET,HEAD,OPTIONS /blobs/{name}/meta of "users" shadows /blobs/{p:path}/meta of "chat"



=== TEST 22: methods past the nine (WebDAV, custom tokens) are routed like any other
--- request eval
["PROPFIND /dav/a/b", "MKCOL /dav/new", "HEAD /dav/x"]
--- response_headers eval
["X-Route: /dav/{p:path}", "X-Route: /dav/{p:path}", "X-Service: chat"]
--- response_body eval
["chat PROPFIND /dav/a/b\n", "chat MKCOL /dav/new\n", ""]
--- no_error_log
unknown method



=== TEST 23: an extension method the path lacks is 405, its Allow naming the extension methods
--- request
LOCK /dav/a
--- error_code: 405
--- response_headers
Allow: GET, HEAD, OPTIONS, MKCOL, PROPFIND
--- response_body
{"detail": "Method not allowed", "path": "/dav/a", "service": "chat", "allow": "GET, HEAD, OPTIONS, MKCOL, PROPFIND"}



=== TEST 24: the status page lists a route's extension methods after the nine
--- request
GET /_discovery
--- response_body_like eval
qr{"path":"/dav/\{p:path\}","methods":\["GET","MKCOL","PROPFIND"\]}
