# prefix=: a service cannot claim paths outside its own prefixes.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

no_shuffle();
no_root_location();

our $HttpConfig = <<'_EOC_';
    discovery_service chat  http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 prefix=/chat prefix=/rooms/;
    discovery_service users http://127.0.0.1:$TEST_NGINX_RAND_PORT_2;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health {
            return 200 '{"routes": [{"path": "/chat/{id}"}, {"path": "/rooms/{r}"},
                                    {"path": "/users/{id}"}, {"path": "/chatty"}]}';
        }
        location / { return 200 "chat $request_uri\n"; }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        location = /health {
            return 200 '{"routes": [{"path": "/users/{id}"}]}';
        }
        location / { return 200 "users $request_uri\n"; }
    }
_EOC_

use_defaults(
    http_config => $HttpConfig,
    init => "DiscoveryTest::wait_ready()",
    no_error_log => undef,
);

run_tests();

__DATA__

=== TEST 1: a claim outside the prefixes is rejected, the rightful owner routes
--- request eval
["GET /users/1", "GET /chat/1", "GET /rooms/lobby", "GET /chatty"]
--- error_code eval
[200, 200, 200, 404]
--- response_body_like eval
["^users /users/1\n", "^chat /chat/1\n", "^chat /rooms/lobby\n", "Endpoint not available"]
--- no_error_log
[alert]
[emerg]



=== TEST 2: the rejections are logged and counted on the status page
--- request
GET /_discovery
--- response_body_like: "name":"chat".*"rejected_routes":2
--- error_log
route "/users/{id}" of "chat" rejected: outside prefix
route "/chatty" of "chat" rejected: outside prefix



=== TEST 3: a prefix must be a path
--- http_config
    discovery_service chat http://127.0.0.1:1 prefix=chat;
--- init
--- must_die
--- error_log
invalid prefix "chat", it must start with "/"



=== TEST 4: rejected entries of a document polled again unchanged are warned about once, and listed
--- http_config eval: $::HttpConfig =~ s/prefix=\/rooms\/;/prefix=\/rooms\/ interval=1s;/r
--- request
GET /_discovery
--- wait: 3
--- response_body_like eval
qr/"name":"chat".*"rejected_routes":2,.*"rejected":\[\{"path":"\/users\/\{id\}","methods":\["GET"\],"reason":"outside prefix"\},\{"path":"\/chatty","methods":\["GET"\],"reason":"outside prefix"\}\]/
--- grep_error_log eval: qr/rejected: outside prefix/
--- grep_error_log_out
rejected: outside prefix
rejected: outside prefix
