# discovery_registry: the directive's errors, and the etcd client against
# mocks of etcd's JSON gateway (the fleet e2e runs it against real etcd).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use EtcdMock;
use File::Temp qw(tempdir);
use HTTP::Tiny;

no_shuffle();
no_root_location();

# the registry's services are taken in by a reload, which the master does
master_process_enabled(1);

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_DEAD_PORT} = free_port();
$ENV{TEST_NGINX_ETCD_PORT} = free_port();
$ENV{TEST_NGINX_COMPACT_PORT} = free_port();
$ENV{TEST_NGINX_ERROR_PORT} = free_port();
$ENV{TEST_NGINX_LOG_DIR} = $dir;
$ENV{TEST_NGINX_SERVING_PORT} = free_port();
$ENV{TEST_NGINX_SVC_PORT} = free_port();
$ENV{TEST_NGINX_OVERRIDES_PORT} = free_port();

my $created = '{"result":{"header":' . header(7) . ',"created":true}}';

# TEST 4: two services, one invalid; a watch that changes both, then hangs
mock_service(
    port => $ENV{TEST_NGINX_ETCD_PORT},
    log => "$dir/etcd.log",
    paths => {
        '/v3/kv/range' => [
            { body => range(7,
                kv('chat', '{"url":"http://127.0.0.1:1","interval":"2s"}', 5),
                kv('bad', '{"url":"http://127.0.0.1:1","fails":0}', 6)) },
            { body => range(9,
                kv('chat', '{"url":"http://127.0.0.1:1","interval":"2s"}', 5),
                kv('users', '{"url":"http://127.0.0.1:2"}', 8)) } ],
        '/v3/watch' => [
            { body => "$created\n" . '{"result":{"header":' . header(9)
                . ',"events":[{"kv":'
                . kv('users', '{"url":"http://127.0.0.1:2"}', 8)
                . '},{"type":"DELETE","kv":{"key":"'
                . b64('/nginx-discovery/services/bad')
                . '","mod_revision":"9"}}]}}' . "\n" },
            { hang => 1 } ],
    },
);

# TEST 5: the watch's revision was compacted: read again, then watch
mock_service(
    port => $ENV{TEST_NGINX_COMPACT_PORT},
    log => "$dir/compact.log",
    paths => {
        '/v3/kv/range' => [
            { body => range(5, kv('a', '{"url":"http://127.0.0.1:1"}', 4)) },
            { body => range(12, kv('a', '{"url":"http://127.0.0.1:1"}', 4),
                                kv('b', '{"url":"http://127.0.0.1:3"}', 11)) } ],
        '/v3/watch' => [
            { body => '{"result":{"header":' . header(12) . ',"created":true}}'
                . "\n" . '{"result":{"header":' . header(12)
                . ',"canceled":true,"compact_revision":"8","cancel_reason":'
                . '"mvcc: required revision has been compacted"}}' . "\n" },
            { hang => 1 } ],
    },
);

# TEST 6: the member lost its leader: etcd's error ends the watch
mock_service(
    port => $ENV{TEST_NGINX_ERROR_PORT},
    log => "$dir/error.log",
    paths => {
        '/v3/kv/range' => [ { body => range(3) } ],
        '/v3/watch' => [
            { body => '{"error":{"grpc_code":14,"http_code":503,"message":'
                . '"etcdserver: no leader","http_status":"Service Unavailable"}}' },
            { hang => 1 } ],
    },
);

# TEST 9, 10: services to route, one named like nginx.conf's
mock_service(
    port => $ENV{TEST_NGINX_SERVING_PORT},
    paths => {
        '/v3/kv/range' => [ { body => range(5,
            kv('reg', qq({"url":"http://127.0.0.1:$ENV{TEST_NGINX_SVC_PORT}","interval":"1s","prefix":["/reg"]}), 4),
            kv('chat', '{"url":"http://127.0.0.1:1"}', 5)) } ],
        '/v3/watch' => [ { hang => 1 } ],
    },
);

# TEST 11: overrides read at revision 6; the first write of them finds
# another write there, at revision 7, which the watch has not brought
# (etcd answers a txn whose compare failed without "succeeded", with its
# failure's read of the key), the second finds the key deleted, the third
# goes through
mock_service(
    port => $ENV{TEST_NGINX_OVERRIDES_PORT},
    log => "$dir/overrides.log",
    bodies => "$dir/overrides.bodies",
    paths => {
        '/v3/kv/range' => [ { body => range(6, key('overrides/controls', '', 6)) } ],
        '/v3/watch' => [ { body => '{"result":{"header":' . header(6)
                                   . ',"created":true}}' . "\n", hold => 30 } ],
        '/v3/kv/txn' => [
            { body => '{"header":' . header(7) . ',"responses":[{"response_range":'
                      . range(7, key('overrides/controls', '', 7)) . '}]}' },
            { body => '{"header":' . header(8) . ',"responses":[{"response_range":'
                      . '{"header":' . header(8) . '}}]}' },
            { body => '{"header":' . header(9) . ',"succeeded":true}' } ],
    },
);

# the overrides' writes etcd received, in order
sub override_writes {
    open my $fh, '<', "$ENV{TEST_NGINX_LOG_DIR}/overrides.bodies" or return ();
    my $k = b64('/nginx-discovery/overrides/controls');
    return grep { m{^/v3/kv/txn } && index($_, $k) >= 0 } <$fh>;
}

$ENV{TEST_NGINX_AUTH_RANGE} = range(4, kv('authed', '{"url":"http://127.0.0.1:4"}', 4));
$ENV{TEST_NGINX_AUTH_WATCH} = '{"result":{"header":' . header(4) . ',"created":true}}';

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]");

run_tests();

__DATA__

=== TEST 1: a full discovery_registry loads, with no discovery_service
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT https://[::1]:2379/ http://etcd.internal prefix=/fleet timeout=2s user=gw password=secret share=off;
--- request
GET /_discovery
--- response_body_like: "registry":\{"type":"etcd","prefix":"/fleet/","endpoints":\["http://127\.0\.0\.1:\d+","https://\[::1\]:2379","http://etcd\.internal"\]



=== TEST 2.1: an unknown registry: an error naming the file and line
--- http_config
    discovery_registry consul http://127.0.0.1:2379;
--- must_die
--- error_log eval
qr/\[emerg\].*unknown registry "consul", the only one is "etcd" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.2: a URL that is not http or https: an error naming the file and line
--- http_config
    discovery_registry etcd ftp://127.0.0.1:2379;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid registry URL "ftp:\/\/127\.0\.0\.1:2379", it must start with "http:\/\/" or "https:\/\/" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.3: a URL with a path: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379/v3;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid registry URL "http:\/\/127\.0\.0\.1:2379\/v3" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.4: no URL: an error naming the file and line
--- http_config
    discovery_registry etcd prefix=/x;
--- must_die
--- error_log eval
qr/\[emerg\].*no URL of an etcd member in "discovery_registry" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.5: a user without a password: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379 user=gw;
--- must_die
--- error_log eval
qr/\[emerg\].*"user=" and "password=" go together in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.6: an invalid timeout: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379 timeout=never;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid timeout "never" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.7: a prefix that is not a path: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379 prefix=fleet;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid prefix "fleet", it must start with "\/" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.8: an unknown parameter: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379 every=5s;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "every=5s" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.9: a second registry: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379;
    discovery_registry etcd http://127.0.0.1:2380;
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_registry" directive is duplicate in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 2.10: share= other than on or off: an error naming the file and line
--- http_config
    discovery_registry etcd http://127.0.0.1:2379 share=yes;
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "share=yes" in \S+nginx\.conf:\d+/
--- no_error_log
[alert]



=== TEST 3: no member answers: the registry is down, with the reason
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- init
DiscoveryTest::wait_status(qr/"state":"down"/);
--- request
GET /_discovery
--- response_body_like: "state":"down","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":0,"table_revision":0,"last_error":"Failed to connect to 127\.0\.0\.1 port \d+
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: Failed to connect/



=== TEST 4: the next member after a dead one; a range read, then the watch's events
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_DEAD_PORT http://127.0.0.1:$TEST_NGINX_ETCD_PORT;
--- init
DiscoveryTest::wait_for("the second watch", sub { main::count_requests("$ENV{TEST_NGINX_LOG_DIR}/etcd.log", "/v3/watch") >= 2 })
    && DiscoveryTest::wait_status(qr/"state":"up"/);
--- request
GET /_discovery
--- response_body_like: "state":"up","since":\d+,"endpoint":"http://127\.0\.0\.1:\d+","revision":9,"table_revision":9,"last_error":"[^"]*","services_count":2,"services_valid":2,"services":\[\{"name":"chat","mod_revision":5,"valid":true,"url":"http://127\.0\.0\.1:1"\},\{"name":"users","mod_revision":8,"valid":true,"url":"http://127\.0\.0\.1:2"\}\]\}
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: Failed to connect/



=== TEST 5: a compacted revision: read again, then watch from the new one
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_COMPACT_PORT;
--- init
DiscoveryTest::wait_status(qr/"revision":12,"table_revision":12,.*"name":"b"/);
--- request
GET /_discovery
--- response_body_like: "state":"up".*"revision":12,"table_revision":\d+,"last_error":null,"services_count":2,"services_valid":2
--- error_log eval
[qr/\[warn\].*discovery: the registry's revision 6 was compacted: reading it again/]
--- no_error_log
discovery: registry at
[alert]
[emerg]



=== TEST 6: etcd's error in the watch stream ends the watch, said with etcd's reason
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_ERROR_PORT;
--- init
DiscoveryTest::wait_status(qr/"state":"up".*"last_error":"etcd: /);
--- request
GET /_discovery
--- response_body_like: "revision":3,"table_revision":3,"last_error":"etcd: \\"etcdserver: no leader\\""
--- error_log eval
qr/\[error\].*discovery: registry at "http:\/\/127\.0\.0\.1:\d+" failed: etcd: "etcdserver: no leader"/



=== TEST 7: user= and password=: a token from /v3/auth/authenticate, sent with each request, and the watch asks for a leader
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 user=gw password=s3cret;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        location = /v3/auth/authenticate {
            return 200 '{"header":{"revision":"4"},"token":"tok.1"}';
        }
        location = /v3/kv/range {
            if ($http_authorization != "tok.1") {
                return 401 '{"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"}';
            }
            return 200 '$TEST_NGINX_AUTH_RANGE';
        }
        location = /v3/watch {
            if ($http_grpc_metadata_hasleader != "true") {
                return 400 '{"error":{"message":"no hasleader"}}';
            }
            if ($http_authorization != "tok.1") {
                return 401 '{"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"}';
            }
            return 200 '$TEST_NGINX_AUTH_WATCH';
        }
    }
--- init
DiscoveryTest::wait_status(qr/"table_revision":4,"last_error":"the watch ended"/);
--- request
GET /_discovery
--- response_body_like: "revision":4,"table_revision":\d+,"last_error":"the watch ended","services_count":1,"services_valid":1,"services":\[\{"name":"authed"
--- no_error_log
invalid auth token
no hasleader
[alert]
[emerg]



=== TEST 8: a wrong password: etcd's reason on the status page
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 user=gw password=wrong;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /v3/auth/authenticate {
            return 400 '{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3}';
        }
    }
--- init
DiscoveryTest::wait_status(qr/"state":"down"/);
--- request
GET /_discovery
--- response_body_like: "last_error":"HTTP status 400 to /v3/auth/authenticate: etcd: \\"etcdserver: authentication failed, invalid user ID or password\\""



=== TEST 9: the registry's services come in by a reload; nginx.conf's name wins a clash, said
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_SERVING_PORT;
    discovery_service chat http://127.0.0.1:$TEST_NGINX_SVC_PORT uri=/chat-health;
--- init
DiscoveryTest::wait_status(qr/"name":"reg","url":"[^"]*","upstream":"[^"]*","state":"[a-z]+","drained":false,"origin":"registry"/, 10);
--- request
GET /_discovery
--- response_body_like: "name":"chat","url":"http://127\.0\.0\.1:\d+","upstream":"[^"]*","state":"[a-z]+","drained":false,"origin":"file"
--- error_log eval
[qr/\[notice\].*discovery: the registry's services changed at revision 5: reloading the configuration/,
 qr/\[warn\].*discovery: the registry's service "chat" is also in \S+nginx\.conf:\d+: that one is used/]



=== TEST 10: the registry's services are routed, within their prefix=
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_SERVING_PORT;
    discovery_service chat http://127.0.0.1:$TEST_NGINX_SVC_PORT uri=/chat-health;
    server {
        listen 127.0.0.1:$TEST_NGINX_SVC_PORT;
        default_type application/json;
        location = /health {
            return 200 '{"routes": [{"path": "/reg/{id}", "methods": ["GET"]}, {"path": "/out/{id}", "methods": ["GET"]}]}';
        }
        location = /chat-health {
            return 200 '{"routes": [{"path": "/chat/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "service $uri\n";
        }
    }
--- init
DiscoveryTest::wait_status(qr/"name":"reg","url":"[^"]*","upstream":"[^"]*","state":"healthy","drained":false,"origin":"registry"/, 10)
    && DiscoveryTest::wait_status(qr/"table_revision":5,/);
--- request eval
["GET /reg/1", "GET /chat/1", "GET /out/1"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
["service /reg/1", "service /chat/1", "Endpoint not available"]



=== TEST 11: the overrides are written over the revision last read only: a write that finds another there, or none, is made again at once, over what it found, not the watch's older revision
--- http_config
    discovery_registry etcd http://127.0.0.1:$TEST_NGINX_OVERRIDES_PORT share=off;
--- config
    location = /_discovery {
        discovery_status;
    }
    location /_discovery/api/ {
        discovery_api write=on;
    }
--- init
DiscoveryTest::wait_status(qr/"state":"up".*"revision":6,/);
my $res = HTTP::Tiny->new(timeout => 5)->post(
    'http://127.0.0.1:' . ($ENV{TEST_NGINX_SERVER_PORT} || 1984)
        . '/_discovery/api/overrides',
    { headers => { 'Content-Type' => 'application/json' },
      content => '{"action": "disable", "path": "/a/{id}", "reason": "t"}' });
Test::More::is($res->{status}, 201, 'the API took the override');
DiscoveryTest::wait_for("three writes", sub { main::override_writes() >= 3 });
sleep 0.5;
my @w = main::override_writes();
Test::More::is(scalar @w, 3, 'written three times, not again once etcd took it');
Test::More::like($w[0], qr/"target":"MOD","mod_revision":"6"/,
                 'the first compares the revision read');
Test::More::like($w[1] // '', qr/"target":"MOD","mod_revision":"7"/,
                 'the second the one the first found');
Test::More::like($w[2] // '', qr/"target":"MOD","mod_revision":"0"/,
                 'the third no key, as the second found, not the revision read');
--- request
GET /_discovery
--- response_body_like: "overrides":\[\{"id":"[^"]+","action":"disable","path":"/a/\{id\}"
--- error_log
the registry's overrides changed before they were put
