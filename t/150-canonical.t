# discovery_noncanonical: the route chosen is the route the service runs.
# nginx routes on $uri, normalized, while proxy_pass forwards the request
# line's path as it came: a path whose normalization changes it is refused
# (or redirected) before anything is routed.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

our $HttpConfig = <<'_EOC_';
    discovery_service files http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    discovery_service users http://127.0.0.1:$TEST_NGINX_RAND_PORT_2;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health {
            return 200 '{"routes": [{"path": "/static/{rest:path}"},
                                    {"path": "/chat/{room}"}]}';
        }
        location / { return 200 "files $request_uri\n"; }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        merge_slashes off;
        location = /health {
            return 200 '{"routes": [{"path": "/users/{name}"}, {"path": "/"}]}';
        }
        location / { return 200 "users $request_uri\n"; }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Route "$discovery_route" always;
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

=== TEST 1: dot segments in every encoding are refused with 400 by default
--- request eval
["GET /static/%2e%2e/users/abc", "GET /static/%2E%2E/users/abc",
 "GET /static/.%2e/users/abc", "GET /static/%2e./users/abc",
 "GET /static/../users/abc", "GET /chat/../users/1",
 "GET /users/./abc", "GET /users/%2e/abc", "GET /static/..%2fusers%2fabc",
 "GET /static%2F..%2Fusers/abc", "GET /users/abc/..", "GET /users/abc/.",
 "GET /static/%2e%2e/users/abc?x=1"]
--- error_code eval
[(400) x 13]
--- response_headers eval
[("Content-Type: application/json\nX-Route: ") x 13]
--- response_body eval
['{"detail": "Path is not canonical", "path": "/static/%2e%2e/users/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static/%2E%2E/users/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static/.%2e/users/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static/%2e./users/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static/../users/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/chat/../users/1"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/./abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/%2e/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static/..%2fusers%2fabc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static%2F..%2Fusers/abc"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/abc/.."}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/abc/."}' . "\n",
 '{"detail": "Path is not canonical", "path": "/static/%2e%2e/users/abc"}' . "\n"]



=== TEST 2: repeated slashes are refused too, whatever merge_slashes says
--- config
    merge_slashes off;
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["GET //users//1", "GET /users//1", "GET //static/x", "GET /static/a%2F%2Fb",
 "GET /users/1%2F/"]
--- error_code eval
[(400) x 5]
--- response_body_like eval
[('"detail": "Path is not canonical"') x 5]



=== TEST 3: with merge_slashes on (the default) as well
--- request eval
["GET //users//1", "GET /users//1"]
--- error_code eval
[400, 400]



=== TEST 4: escapes that decode to the same segments are canonical, and routed as the service sees them
--- request eval
["GET /users/%61bc", "GET /users/%C3%A9t%C3%A9", "GET /static/a%2Fb",
 "GET /static/%2e%2e%2e/x", "GET /static/..x/y", "GET /static/%252e%252e/x",
 "GET /static/a/b/", "GET /users/a%5C..%5Cb", "GET /static/x?next=/../../etc"]
--- error_code eval
[(200) x 9]
--- response_headers eval
["X-Route: /users/{name}", "X-Route: /users/{name}",
 "X-Route: /static/{rest:path}", "X-Route: /static/{rest:path}",
 "X-Route: /static/{rest:path}", "X-Route: /static/{rest:path}",
 "X-Route: /static/{rest:path}", "X-Route: /users/{name}",
 "X-Route: /static/{rest:path}"]
--- response_body eval
["users /users/%61bc\n", "users /users/%C3%A9t%C3%A9\n", "files /static/a%2Fb\n",
 "files /static/%2e%2e%2e/x\n", "files /static/..x/y\n",
 "files /static/%252e%252e/x\n", "files /static/a/b/\n",
 "users /users/a%5C..%5Cb\n", "files /static/x?next=/../../etc\n"]



=== TEST 5: redirect: 308 to the canonical path, the query string kept
--- config
    location / {
        discovery_noncanonical redirect;
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["GET /static/%2e%2e/users/abc?x=1&y=%2e%2e", "GET //users//1", "GET /users/abc/..",
 "GET /a/./b/../users/%41"]
--- error_code eval
[308, 308, 308, 308]
--- response_headers_like eval
["Location: http://[^/]+/users/abc\\?x=1&y=%2e%2e",
 "Location: http://[^/]+/users/1",
 "Location: http://[^/]+/users/",
 "Location: http://[^/]+/a/users/%41"]



=== TEST 6: pass: routed on nginx's normalized $uri, as before (unsafe)
--- config
    location / {
        discovery_noncanonical pass;
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Route "$discovery_route" always;
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /static/%2e%2e/users/abc
--- error_code: 200
--- response_headers
X-Route: /users/{name}
--- response_body
users /static/%2e%2e/users/abc



=== TEST 7: the directive is inherited, and a location can relax it
--- config
    discovery_noncanonical redirect;
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location /static/ {
        discovery_noncanonical reject;
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["GET /users/./a", "GET /static/./a"]
--- error_code eval
[308, 400]



=== TEST 8: an error_page for 400 takes over
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        error_page 400 = @bad;
    }
    location @bad {
        return 400 "custom bad request\n";
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /static/%2e%2e/users/abc
--- error_code: 400
--- response_body
custom bad request



=== TEST 9: the 400 body stays valid JSON whatever the path holds
--- request
GET /a%22b%5C/./c%01%FF
--- error_code: 400
--- response_body
{"detail": "Path is not canonical", "path": "/a%22b%5C/./c%01%FF"}



=== TEST 10: a URI nginx rewrote is sent as nginx has it: not checked
--- config
    location / {
        discovery_route on;
        rewrite ^/old/(.*)$ /users/$1 break;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /old/%2e/abc
--- error_code: 200
--- response_body
users /users/abc



=== TEST 11: an invalid value is refused by nginx -t
--- config
    location / {
        discovery_noncanonical maybe;
        discovery_route on;
    }
--- init
--- must_die
--- error_log eval
qr/\[emerg\].*invalid value "maybe" in .*nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 12: an encoded control character is refused, in redirect mode too
Python's '$' matches before a final newline: Starlette runs "/users/me"
for "/users/me%0A", which nginx routes as "/users/{name}".
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Route "$discovery_route" always;
    }
    location /r/ {
        discovery_noncanonical redirect;
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["GET /users/me%0A", "GET /users/me%0d", "GET /users/a%09b", "GET /users/%7F",
 "GET /r/x%0A", "GET /r/../users/me%0a", "GET /users/me%20"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 200]
--- response_body eval
['{"detail": "Path is not canonical", "path": "/users/me%0A"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/me%0d"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/a%09b"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/users/%7F"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/r/x%0A"}' . "\n",
 '{"detail": "Path is not canonical", "path": "/r/../users/me%0a"}' . "\n",
 "users /users/me%20\n"]
