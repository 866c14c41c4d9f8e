# Ownership across services: overlaps are visible, discovery_overlap deny
# enforces them, every turned-away route is listed with its reason, and no
# document can make lookups costly.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

$ENV{TEST_NGINX_MOCK_PORT} = free_port();

# every mix of a literal and the int, float and str converters over six
# levels: 4,096 routes that, routed, would make a failing lookup walk
# thousands of trie nodes
my @lattice = ('');
for (1 .. 6) {
    @lattice = map { my $p = $_; map { "$p/$_" } ('1', '{i:int}', '{f:float}', '{s:str}') } @lattice;
}
my $lattice = '{"routes": ['
    . join(',', map { qq({"path": "$_", "methods": ["POST"]}) } @lattice)
    . ']}';

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/users'   => [ { body => '{"routes": [{"path": "/users/{id}",
                            "methods": ["GET", "PUT", "POST", "DELETE"]}]}' } ],
        '/web'     => [ { body => '{"routes": [{"path": "/users/1", "methods": ["GET", "PUT"]},
                            {"path": "/{p:path}", "methods": ["GET"]},
                            {"path": "/about", "methods": ["GET"]}]}' } ],
        '/lattice' => [ { body => $lattice } ],
        '/small'   => [ { body => '{"routes": [{"path": "/small/{id:int}"}]}' } ],
        '/owner'   => [ { body => '{"routes": [{"path": "/users/{id:int}", "methods": ["GET"]}]}' } ],
        '/owner_options' => [ { body => '{"routes": [{"path": "/users/{id:int}",
                            "methods": ["GET", "OPTIONS"]}]}' } ],
        '/literal' => [ { body => '{"routes": [{"path": "/users/7", "methods": ["POST"]}]}' } ],
        '/cors'    => [ { body => '{"routes": [{"path": "/{p:path}", "methods": ["OPTIONS"]}]}' } ],
    },
);

our $HttpConfig = <<'_EOC_';
    discovery_service users http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/users interval=1s;
    discovery_service web   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/web interval=1s;
_EOC_

# a literal of a later service beside an earlier service's typed route, their
# methods disjoint
our $LiteralConfig = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Service $discovery_service;
    }
    location = /_discovery {
        discovery_status;
    }
_EOC_

use_defaults(
    http_config => $HttpConfig,
    init => "DiscoveryTest::wait_ready()",
);

run_tests();

__DATA__

=== TEST 1: allow (the default): both directions of shadowing are listed, warned once; the preflights of a route that publishes no OPTIONS go to the route that shadows it
--- request
GET /_discovery
--- wait: 2.5
--- response_body_like eval
qr/"overlaps":\[\{"service":"users","route":"\/users\/\{id\}","methods":\["GET","HEAD","OPTIONS"\],"shadows":\{"service":"web","route":"\/\{p:path\}"\}\},\{"service":"web","route":"\/users\/1","methods":\["GET","HEAD","PUT","OPTIONS"\],"shadows":\{"service":"users","route":"\/users\/\{id\}"\}\}\]/
--- grep_error_log eval: qr/\[warn\].*route overlap: .*/
--- grep_error_log_out eval
[qr/\A[^\n]*route overlap: GET,HEAD,OPTIONS \/users\/\{id\} of "users" shadows \/\{p:path\} of "web"[^\n]*\n[^\n]*route overlap: GET,HEAD,PUT,OPTIONS \/users\/1 of "web" shadows \/users\/\{id\} of "users"[^\n]*\n\z/]



=== TEST 2: allow: the later service takes what it publishes, and the preflights
--- request eval
["GET /users/1", "PUT /users/1", "DELETE /users/1", "GET /users/2",
 "OPTIONS /users/1", "OPTIONS /users/2"]
--- response_body eval
["mock GET /users/1\n", "mock PUT /users/1\n", "mock DELETE /users/1\n",
 "mock GET /users/2\n", "mock OPTIONS /users/1\n", "mock OPTIONS /users/2\n"]
--- response_headers eval
["X-Service: web", "X-Service: web", "X-Service: users", "X-Service: users",
 "X-Service: web", "X-Service: users"]
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Service $discovery_service;
    }
    location = /_discovery {
        discovery_status;
    }



=== TEST 3: deny: a route shadowing an earlier service's is rejected
--- http_config
    discovery_overlap deny;
    discovery_service users http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/users interval=1s;
    discovery_service web   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/web interval=1s;
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Service $discovery_service;
    }
    location = /_discovery {
        discovery_status;
    }
--- request eval
["GET /users/1", "PUT /users/1", "GET /about", "GET /elsewhere/x"]
--- response_headers eval
["X-Service: users", "X-Service: users", "X-Service: web", "X-Service: web"]



=== TEST 4: deny: the status page lists the rejection with its reason, warned
--- http_config
    discovery_overlap deny;
    discovery_service users http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/users interval=1s;
    discovery_service web   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/web interval=1s;
--- request
GET /_discovery
--- response_body_like eval
qr/"name":"web".*"rejected_routes":1,.*"rejected":\[\{"path":"\/users\/1","methods":\["GET","PUT"\],"reason":"shadows users \/users\/\{id\}"\}\]/
--- error_log
route "/users/1" of "web" rejected: shadows users /users/{id}



=== TEST 5: deny: a catch-all configured first makes every later route shadow it
--- http_config
    discovery_overlap deny;
    discovery_service web   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/web interval=1s;
    discovery_service users http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/users interval=1s;
--- config
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
        add_header X-Service $discovery_service;
    }
    location = /_discovery {
        discovery_status;
    }
--- request
GET /users/2
--- response_headers
X-Service: web
--- error_log
route "/users/{id}" of "users" rejected: shadows web /{p:path}



=== TEST 6: prefix= rejections are listed with their reason
--- http_config
    discovery_service web http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/web prefix=/about;
--- request
GET /_discovery
--- response_body_like eval
qr/"name":"web".*"rejected_routes":2,.*"rejected":\[\{"path":"\/users\/1","methods":\["GET","PUT"\],"reason":"outside prefix"\},\{"path":"\/\{p:path\}","methods":\["GET"\],"reason":"outside prefix"\}\]/



=== TEST 7: a document that would make lookups costly: its costly routes are rejected
--- http_config
    discovery_service small   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/small;
    discovery_service lattice http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/lattice;
--- request
GET /_discovery
--- response_body_like eval
qr/"name":"lattice".*"rejected":\[\{"path":"[^"]+","methods":\["POST"\],"reason":"lookup too costly: a request could visit \d+ trie nodes, the limit is 256"\}/
--- error_log eval
qr/\[warn\].*route "[^"]+" of "lattice" rejected: lookup too costly/



=== TEST 8: the routes within the bound are routed, the others are not
--- http_config
    discovery_service small   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/small;
    discovery_service lattice http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/lattice;
--- request eval
["GET /small/7", "POST /1/1/1/1/1/1", "POST /x/x/x/x/x/x", "GET /small/x"]
--- error_code eval
[200, 200, 404, 404]
--- response_body_like eval
["mock GET /small/7", "mock POST /1/1/1/1/1/1", "Endpoint not available",
 "Endpoint not available"]



=== TEST 9: discovery_overlap takes allow or deny, at http level only
--- http_config
    discovery_overlap sometimes;
    discovery_service web http://127.0.0.1:1 uri=/web;
--- init
--- must_die
--- error_log eval
qr/\[emerg\].*invalid value "sometimes" in .*nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 10: not in a server block
--- http_config
    discovery_service web http://127.0.0.1:1 uri=/web;
--- config
    discovery_overlap deny;
--- init
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_overlap" directive is not allowed here in .*nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 11: allow: a literal beside a typed route, methods disjoint: GET still reaches the owner, preflights go to the literal's service
--- http_config
    discovery_service owner   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner interval=1s;
    discovery_service literal http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/literal interval=1s;
--- config eval: $::LiteralConfig
--- request eval
["GET /users/7", "HEAD /users/7", "POST /users/7", "OPTIONS /users/7",
 "OPTIONS /users/8", "POST /users/8"]
--- error_code eval
[200, 200, 200, 200, 200, 405]
--- response_headers eval
["X-Service: owner", "X-Service: owner", "X-Service: literal",
 "X-Service: literal", "X-Service: owner", "!X-Service"]
--- response_body eval
["mock GET /users/7\n", "", "mock POST /users/7\n", "mock OPTIONS /users/7\n",
 "mock OPTIONS /users/8\n",
 qq({"detail": "Method not allowed", "path": "/users/8", "service": "owner", "allow": "GET, HEAD, OPTIONS"}\n)]



=== TEST 12: allow: the preflights it takes make it an overlap, listed and warned
--- http_config
    discovery_service owner   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner interval=1s;
    discovery_service literal http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/literal interval=1s;
--- config eval: $::LiteralConfig
--- request
GET /_discovery
--- response_body_like eval
qr/"conflicts":\[\],"overlaps":\[\{"service":"literal","route":"\/users\/7","methods":\["OPTIONS"\],"shadows":\{"service":"owner","route":"\/users\/\{id:int\}"\}\}\]\}$/
--- grep_error_log eval: qr/\[warn\].*route overlap: .*/
--- grep_error_log_out eval
[qr/\A[^\n]*route overlap: OPTIONS \/users\/7 of "literal" shadows \/users\/\{id:int\} of "owner"[^\n]*\n\z/]



=== TEST 13: deny: the literal is rejected, listed with its reason, warned
--- http_config
    discovery_overlap deny;
    discovery_service owner   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner interval=1s;
    discovery_service literal http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/literal interval=1s;
--- config eval: $::LiteralConfig
--- request
GET /_discovery
--- response_body_like eval
qr/"name":"literal".*"rejected_routes":1,.*"rejected":\[\{"path":"\/users\/7","methods":\["POST"\],"reason":"shadows owner \/users\/\{id:int\}"\}\].*"overlaps":\[\]\}$/
--- error_log
route "/users/7" of "literal" rejected: shadows owner /users/{id:int}



=== TEST 14: deny: every request for /users/7 is the owner's, POST its 405
--- http_config
    discovery_overlap deny;
    discovery_service owner   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner interval=1s;
    discovery_service literal http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/literal interval=1s;
--- config eval: $::LiteralConfig
--- request eval
["GET /users/7", "OPTIONS /users/7", "POST /users/7"]
--- error_code eval
[200, 200, 405]
--- response_headers eval
["X-Service: owner", "X-Service: owner", "Allow: GET, HEAD, OPTIONS"]
--- response_body eval
["mock GET /users/7\n", "mock OPTIONS /users/7\n",
 qq({"detail": "Method not allowed", "path": "/users/7", "service": "owner", "allow": "GET, HEAD, OPTIONS"}\n)]



=== TEST 15: deny: an owner that publishes OPTIONS keeps its preflights: the literal takes nothing and is routed (its preflights are the owner's, which is listed)
--- http_config
    discovery_overlap deny;
    discovery_service owner   http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner_options interval=1s;
    discovery_service literal http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/literal interval=1s;
--- config eval: $::LiteralConfig
--- request eval
["GET /users/7", "OPTIONS /users/7", "POST /users/7", "GET /_discovery"]
--- response_headers eval
["X-Service: owner", "X-Service: owner", "X-Service: literal", ""]
--- response_body_like eval
["mock GET /users/7", "mock OPTIONS /users/7", "mock POST /users/7",
 qr/"name":"literal".*"rejected_routes":0,.*"rejected":\[\].*"conflicts":\[\],"overlaps":\[\{"service":"owner","route":"\/users\/\{id:int\}","methods":\["OPTIONS"\],"shadows":\{"service":"literal","route":"\/users\/7"\}\}\]\}$/]
--- no_error_log
rejected



=== TEST 16: allow: a later catch-all that publishes OPTIONS answers the preflights of the routes that do not: listed
--- http_config
    discovery_service owner http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner interval=1s;
    discovery_service cors  http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/cors interval=1s;
--- config eval: $::LiteralConfig
--- request eval
["OPTIONS /users/7", "GET /users/7", "GET /_discovery"]
--- response_headers eval
["X-Service: cors", "X-Service: owner", ""]
--- response_body_like eval
["mock OPTIONS /users/7", "mock GET /users/7",
 qr/"overlaps":\[\{"service":"cors","route":"\/\{p:path\}","methods":\["OPTIONS"\],"shadows":\{"service":"owner","route":"\/users\/\{id:int\}"\}\}\]\}$/]



=== TEST 17: deny: that catch-all is rejected, and the preflights stay the owner's
--- http_config
    discovery_overlap deny;
    discovery_service owner http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/owner interval=1s;
    discovery_service cors  http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/cors interval=1s;
--- config eval: $::LiteralConfig
--- request eval
["OPTIONS /users/7", "OPTIONS /elsewhere", "GET /_discovery"]
--- error_code eval
[200, 404, 200]
--- response_headers eval
["X-Service: owner", "", ""]
--- response_body_like eval
["mock OPTIONS /users/7", "Endpoint not available",
 qr/"name":"cors".*"rejected":\[\{"path":"\/\{p:path\}","methods":\["OPTIONS"\],"reason":"shadows owner \/users\/\{id:int\}"\}\].*"overlaps":\[\]\}$/]
