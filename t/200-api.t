# discovery_api: the management API, its reads, writes and errors.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

no_shuffle();
no_root_location();

our $HttpConfig = <<'_EOC_';
    discovery_service users   http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=1s;
    discovery_service billing http://127.0.0.1:$TEST_NGINX_RAND_PORT_2 interval=1s;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /health {
            default_type application/json;
            return 200 '{"status": "healthy", "version": "1", "routes": [
                {"path": "/users/{id:int}", "methods": ["GET", "PUT"], "name": "get_user",
                 "tags": ["users"], "auth_required": true},
                {"path": "/users/me", "methods": ["GET"]},
                {"path": "/shared/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "users $request_method $uri\n";
        }
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        location = /health {
            default_type application/json;
            return 200 '{"status": "healthy", "version": "2", "routes": [
                {"path": "/shared/{id}", "methods": ["GET"]},
                {"path": "/users/{name}", "methods": ["GET"]},
                {"path": "/billing/{rest:path}", "methods": ["GET", "POST"]}]}';
        }
        location / {
            return 200 "billing $request_method $uri\n";
        }
    }
_EOC_

our $Config = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }

    location = /_discovery {
        discovery_status;
    }

    location /_discovery/api/ {
        discovery_api write=on;
    }

    location /ro {
        discovery_api;
    }
_EOC_

# api($method, $path, $body, %headers): one request to the test server,
# as ($status, $decoded_json_or_undef, $raw_response).  A body gets
# Content-Type: application/json unless the headers say otherwise.
sub api {
    my ($method, $path, $body, %h) = @_;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or return (0, undef, "connect: $!");
    $h{'Content-Type'} = 'application/json'
        if defined $body && !exists $h{'Content-Type'};
    $body = '' unless defined $body;
    my $head = "$method $path HTTP/1.0\r\nHost: localhost\r\n";
    $head .= "$_: $h{$_}\r\n" for grep { defined $h{$_} } sort keys %h;
    $head .= "Content-Length: " . length($body) . "\r\n" if length $body
        || $method ne 'GET';
    print $s "$head\r\n$body";
    local $/;
    my $res = <$s>;
    close $s;
    my ($status) = $res =~ m{^HTTP/1\.\d (\d+)};
    my ($json) = $res =~ /\r\n\r\n(.*)/s;
    my $doc = eval { JSON::PP->new->utf8->decode($json) };
    return ($status || 0, $doc, $res);
}

use_defaults(http_config => $HttpConfig, config => $Config);

run_tests();

__DATA__

=== TEST 1: smoke
--- init
DiscoveryTest::wait_ready();
--- request
GET /_discovery/api/services
--- response_body_like: "services"
