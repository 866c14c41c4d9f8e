# Conditional polls: a service's ETag is sent back as If-None-Match, and a
# 304 is a good poll with nothing to parse.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use Time::HiRes qw(sleep time);

no_shuffle();
no_root_location();

use_defaults();

sub poll_statuses {
    my $log = Test::Nginx::Util::server_root() . "/logs/mock.log";
    open my $fh, '<', $log or return '';
    local $/;
    return join ' ', split ' ', <$fh>;
}

# Waits until the polls logged so far match $re; false after $timeout s.
sub wait_polls {
    my ($re, $timeout) = @_;
    my $deadline = time + ($timeout || 10);
    until (poll_statuses() =~ $re) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

run_tests();

__DATA__

=== TEST 1: unchanged documents are answered 304 and the routes stay
--- user_files
>>> routes.json
{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/routes.json interval=1s;

    log_format poll escape=none "$status:$http_if_none_match";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /routes.json {
            root html;
            access_log logs/mock.log poll;
        }
        location / {
            return 200 "mock $uri\n";
        }
    }
--- init
DiscoveryTest::wait_ready();
select undef, undef, undef, 2.5;
my $polls = main::poll_statuses();
Test::More::like($polls, qr/^200: (304:"[^"]+" ?){2,}$/,
                 "first poll fetches, later ones are conditional: $polls");
--- request
GET /a/1
--- response_body
mock /a/1



=== TEST 2: an etag header in lower case, as FastAPI sends it, is sent back
--- http_config
    discovery_service s http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/routes.json interval=1s;

    log_format poll escape=none "$status:$http_if_none_match";
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /routes.json {
            access_log logs/mock.log poll;
            default_type application/json;
            if ($http_if_none_match = '"v1"') {
                return 304;
            }
            add_header etag '"v1"';
            return 200 '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}';
        }
        location / {
            return 200 "mock $uri\n";
        }
    }
--- init
Test::More::ok(main::wait_polls(qr/304/),
               'a poll is answered 304 within 10 s: ' . main::poll_statuses());
my $polls = main::poll_statuses();
Test::More::like($polls, qr/^200: (304:"v1" ?)+$/,
                 "first poll fetches, later ones send the tag back: $polls");
--- request
GET /a/1
--- response_body
mock /a/1
