# discovery_ui: the dashboard's page, served from the module with the API's
# path written in, its headers, HEAD, other methods, configuration errors.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;

master_on();
workers(2);
no_shuffle();
no_root_location();

# the page as built in, with the path the module writes in for the marker
sub page {
    my $api = shift;
    open my $fh, '<', 'src/ui/dashboard.html' or die "dashboard.html: $!";
    my $page = do { local $/; <$fh> };
    close $fh;
    my $n = $page =~ s/\@DISCOVERY_API\@/$api/g;
    die "the marker is in the page $n times, not once" unless $n == 1;
    return $page;
}

run_tests();

__DATA__

=== TEST 1: the page, whole, with the default API path and its headers
--- config
    location = /dashboard {
        discovery_ui;
    }
--- request
GET /dashboard
--- response_headers
Content-Type: text/html; charset=utf-8
Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'
X-Content-Type-Options: nosniff
Cache-Control: no-cache
Referrer-Policy: no-referrer
--- response_body eval
main::page('/_discovery/api')
--- no_error_log
[alert]
[emerg]



=== TEST 2: the API path configured is written in the page's meta tag
--- config
    location /ops/ui/ {
        discovery_ui api=/ops/api/v1;
    }
--- request
GET /ops/ui/
--- response_body_like: <meta name="discovery-api" content="/ops/api/v1">
--- no_error_log
[alert]
[emerg]



=== TEST 3: Content-Length is the page's length with the path written in
--- config
    location = /dashboard {
        discovery_ui api=/x;
    }
--- request
GET /dashboard
--- response_headers eval
"Content-Length: " . length(main::page('/x'))
--- no_error_log
[alert]
[emerg]



=== TEST 4: nothing in the page loads from elsewhere: no src, href, URL or import
--- config
    location = /dashboard {
        discovery_ui;
    }
--- request
GET /dashboard
--- response_body_like eval
qr/\A(?!.*(?:\bsrc=|\bhref=|https?:|url\(|\@import))<!DOCTYPE html>.*<\/html>\n\z/s
--- no_error_log
[alert]
[emerg]



=== TEST 5: HEAD has the headers and no body
--- config
    location = /dashboard {
        discovery_ui;
    }
--- request
HEAD /dashboard
--- response_headers
Content-Type: text/html; charset=utf-8
X-Content-Type-Options: nosniff
Cache-Control: no-cache
--- response_body
--- no_error_log
[alert]
[emerg]



=== TEST 6: POST is refused with 405 and Allow
--- config
    location = /dashboard {
        discovery_ui;
    }
--- request
POST /dashboard
x=1
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- no_error_log
[alert]
[emerg]



=== TEST 7: DELETE is refused too
--- config
    location = /dashboard {
        discovery_ui;
    }
--- request
DELETE /dashboard
--- error_code: 405
--- no_error_log
[alert]
[emerg]



=== TEST 8: next to routing, the page is served, not routed
--- http_config
    discovery_service chat http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health { return 200 '{"routes": [{"path": "/{any}"}]}'; }
        location / { return 200 'from chat'; }
    }
--- config
    discovery_route on;
    location / {
        proxy_pass http://$discovery_upstream;
    }
    location = /dashboard {
        discovery_route off;
        discovery_ui;
    }
--- request
GET /dashboard
--- response_body_like: <meta name="discovery-api" content="/_discovery/api">
--- no_error_log
[alert]
[emerg]



=== TEST 9: a relative api= path names the file and line
--- config
    location = /dashboard {
        discovery_ui api=_discovery/api;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid api path "_discovery\/api": a URL path that starts with "\/".* in \S+nginx\.conf:\d+/



=== TEST 10: an api= path with a quote, which would end the page's attribute
--- config
    location = /dashboard {
        discovery_ui 'api=/a"><script>';
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid api path "\/a"><script>".* in \S+nginx\.conf:\d+/



=== TEST 11: an api= path with a query
--- config
    location = /dashboard {
        discovery_ui api=/api?x=1;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid api path "\/api\?x=1".* in \S+nginx\.conf:\d+/



=== TEST 12: an empty api=
--- config
    location = /dashboard {
        discovery_ui api=;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid api path "".* in \S+nginx\.conf:\d+/



=== TEST 13: an unknown parameter
--- config
    location = /dashboard {
        discovery_ui write=on;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "write=on" in \S+nginx\.conf:\d+/



=== TEST 14: twice in one location
--- config
    location = /dashboard {
        discovery_ui;
        discovery_ui api=/b;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_ui" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 15: in a location that routes (inherited from the server), never served
--- http_config
    discovery_service chat http://127.0.0.1:1;
--- config
    discovery_route on;
    location = /dashboard {
        discovery_ui;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_ui" in a location with "discovery_route on" is never served in \S+nginx\.conf:\d+/



=== TEST 16: not a server directive
--- config
    discovery_ui;
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_ui" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 17: with no discovery_service, workers leave a reload without a crash
--- config
    location = /dashboard {
        discovery_ui;
    }
--- init
Test::More::is(DiscoveryTest::reload_config(sub { shift }), 'reloaded',
               'reloaded');
--- request
GET /dashboard
--- error_code: 200
--- no_error_log
[alert]
[emerg]
exited on signal
