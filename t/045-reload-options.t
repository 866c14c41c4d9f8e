# A reload that changes how a service's document is read (prefix=,
# format=, uri=) takes effect at once, though the document is unchanged
# and the service answers the conditional poll 304 Not Modified.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

# fixed for the file: a service keeps its URL, hence its record and its
# ETag, across the reloads of the blocks
$ENV{TEST_NGINX_DOC_PORT} = free_port();

use_hup();
no_shuffle();
no_root_location();

# nginx serves the documents with an ETag made of their size and mtime:
# the dates are fixed, so a reload (which writes the files again) keeps
# them; x.json and y.json have the same size and date, hence the same ETag
our $Docs = <<'_EOC_';
>>> doc.json 202001010000
{"routes": [{"path": "/a/{id}"}, {"path": "/b/{id}"}]}
>>> both.json 202001010000
{"routes": [{"path": "/r/{id}"}], "openapi": "3.0.0", "paths": {"/o/{id}": {"get": {}}}}
>>> x.json 202001010000
{"routes": [{"path": "/x/{id}"}]}
>>> y.json 202001010000
{"routes": [{"path": "/y/{id}"}]}
>>> t.json 202001010000
{"routes": [{"path": "/t1/{id}"}, {"path": "/t2/{id}"}]}
_EOC_

# s, f and u are polled every 60 s: only a poll made at the reload can
# show the change within the test; t is polled every second, and its
# polls are answered 304
sub services {
    my %opt = (s => '', f => 'format=routes', u => 'uri=/x.json', t => '',
               @_);
    return <<"_EOC_";
    discovery_service s http://127.0.0.1:\$TEST_NGINX_DOC_PORT uri=/doc.json interval=60s $opt{s};
    discovery_service f http://127.0.0.1:\$TEST_NGINX_DOC_PORT uri=/both.json interval=60s $opt{f};
    discovery_service u http://127.0.0.1:\$TEST_NGINX_DOC_PORT interval=60s $opt{u};
    discovery_service t http://127.0.0.1:\$TEST_NGINX_DOC_PORT uri=/t.json interval=1s $opt{t};

    server {
        listen 127.0.0.1:\$TEST_NGINX_DOC_PORT;
        location ~ \\.json\$ { root html; }
        location / { return 200 "mock \$uri\\n"; }
    }
_EOC_
}

# until the access log has a 304 to a poll of $path
sub wait_304 {
    my $path = shift;
    return DiscoveryTest::poll_until(sub {
        open my $fh, '<', $Test::Nginx::Util::AccLogFile or return 0;
        my $log = do { local $/; <$fh> };
        return $log =~ m{"GET \Q$path\E HTTP/1\.1" 304 };
    }, 3);
}

use_defaults();

run_tests();

__DATA__

=== TEST 1: the services as first configured
--- http_config eval: main::services()
--- user_files eval: $::Docs
--- init
DiscoveryTest::wait_ready();
Test::More::ok(main::wait_304('/t.json'), 't is polled, and answers 304');
--- request eval
["GET /a/1", "GET /b/1", "GET /r/1", "GET /o/1", "GET /x/1", "GET /y/1",
 "GET /t2/1"]
--- error_code eval
[200, 200, 200, 404, 200, 404, 200]



=== TEST 2: a tighter prefix= applies at once; the document answers 304
--- http_config eval: main::services(s => 'prefix=/a')
--- user_files eval: $::Docs
--- init
DiscoveryTest::wait_status(qr/"name":"s","url"[^\]]*"rejected_routes":1/, 3);
--- request eval
["GET /a/2", "GET /b/2", "GET /r/2", "GET /x/2"]
--- error_code eval
[200, 404, 200, 200]



=== TEST 3: format= applies at once
--- http_config eval: main::services(s => 'prefix=/a', f => 'format=openapi')
--- user_files eval: $::Docs
--- init
DiscoveryTest::wait_status(qr{"name":"f","url"[^\]]*"path":"/o/\{id\}"}, 3);
--- request eval
["GET /o/3", "GET /r/3", "GET /a/3", "GET /b/3"]
--- error_code eval
[200, 404, 200, 404]



=== TEST 4: uri= applies at once, though both documents have the same ETag
--- http_config eval: main::services(s => 'prefix=/a', f => 'format=openapi', u => 'uri=/y.json')
--- user_files eval: $::Docs
--- init
DiscoveryTest::wait_status(qr{"name":"u","url"[^\]]*"path":"/y/\{id\}"}, 3);
--- request eval
["GET /y/4", "GET /x/4", "GET /o/4", "GET /a/4"]
--- error_code eval
[200, 404, 200, 200]



=== TEST 5: a service polled every second with 304s: its new prefix= applies
--- http_config eval
main::services(s => 'prefix=/a', f => 'format=openapi', u => 'uri=/y.json',
               t => 'prefix=/t1')
--- user_files eval: $::Docs
--- init
DiscoveryTest::wait_status(qr/"name":"t","url"[^\]]*"rejected_routes":1/, 3);
--- request eval
["GET /t1/5", "GET /t2/5", "GET /y/5"]
--- error_code eval
[200, 404, 200]
