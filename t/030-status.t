# discovery_status: everything the gateway knows, always valid JSON.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use JSON::PP;

no_shuffle();
no_root_location();

$ENV{TEST_NGINX_DEAD_PORT} = free_port();

our $HttpConfig = <<'_EOC_';
    discovery_service chat http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 interval=10s;
    discovery_service "we.ird-1_" http://127.0.0.1:$TEST_NGINX_RAND_PORT_1 uri=/weird;
    discovery_service down http://127.0.0.1:$TEST_NGINX_DEAD_PORT;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        location = /health {
            return 200 '{"status": "healthy", "version": "1.2.3", "routes": [
                {"path": "/chat/{id:int}", "methods": ["GET", "POST"], "name": "get_chat",
                 "description": "not kept", "tags": ["chat", "v1"], "auth_required": true}]}';
        }
        location = /weird {
            return 200 '{"version": "q\\"\\\\\\u0001\\u00e9", "routes": [
                {"path": "/w/\\u00e9\\"x", "methods": ["GET"], "name": "n\\"\\n",
                 "tags": ["<script>"]},
                {"path": "/chat/{n:int}", "methods": ["GET"]}]}';
        }
    }
_EOC_

sub check_status {
    my $body = shift;
    my $doc = eval { JSON::PP->new->utf8->decode($body) };
    return "not JSON: $@" unless $doc;
    return "module_version is not debian/changelog's: $doc->{module_version}"
        unless $doc->{module_version} eq DiscoveryTest::module_version();
    return "generation is not an integer"
        unless $doc->{generation} =~ /^\d+$/;
    my %s = map { $_->{name} => $_ } @{ $doc->{services} };
    my @names = map { $_->{name} } @{ $doc->{services} };
    return "services out of order: @names"
        unless "@names" eq "chat we.ird-1_ down";

    my $chat = $s{chat};
    return "chat: bad fields" unless $chat->{state} eq 'healthy'
        && $chat->{version} eq '1.2.3'
        && $chat->{url} =~ m{^http://127\.0\.0\.1:\d+$}
        && $chat->{upstream} =~ /^127\.0\.0\.1:\d+$/
        && $chat->{failures} == 0
        && !defined $chat->{last_error}
        && $chat->{last_check} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/
        && $chat->{last_success} eq $chat->{last_check};
    my $r = $chat->{routes}[0];
    return "chat route: " . encode_json($r) unless $r->{path} eq '/chat/{id:int}'
        && "@{$r->{methods}}" eq 'GET POST' && $r->{name} eq 'get_chat'
        && "@{$r->{tags}}" eq 'chat v1' && $r->{auth_required}
        && !exists $r->{description};

    my $w = $s{'we.ird-1_'};
    return "weird: " . encode_json($w) unless $w->{version} eq "q\"\\\x{1}\x{e9}"
        && $w->{routes}[0]{path} eq "/w/\x{e9}\"x"
        && $w->{routes}[0]{name} eq "n\"\n";

    my $down = $s{down};
    return "down: " . encode_json($down) unless $down->{state} eq 'unhealthy'
        && $down->{failures} == 1 && !defined $down->{last_success}
        && length $down->{last_error} && @{ $down->{routes} } == 0;

    my $c = $doc->{conflicts}[0];
    return "conflicts: " . encode_json($doc->{conflicts})
        unless @{ $doc->{conflicts} } == 1 && $c->{service} eq 'we.ird-1_'
        && $c->{shadowed_by} eq 'chat' && $c->{path} eq '/chat/{n:int}'
        && $c->{winner_path} eq '/chat/{id:int}'
        && "@{$c->{methods}}" eq 'GET';
    return "ok";
}

# the page is parsed by a JSON parser, then checked field by field
sub check_page {
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};
    my $res = DiscoveryTest::http_get($port, '/_discovery');
    my ($body) = $res =~ /\r\n\r\n(.*)/s;
    Test::More::is(check_status($body), 'ok', 'status page content');
}

use_defaults(http_config => $HttpConfig);

run_tests();

__DATA__

=== TEST 1: the status page lists services, routes and conflicts as JSON
--- config
    location = /_discovery {
        discovery_status;
    }
--- init
DiscoveryTest::wait_ready();
main::check_page();
--- request
GET /_discovery
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"module_version":"[^"]+",\s*"generation":\s*\d+,



=== TEST 2: other methods than GET and HEAD are refused
--- config
    location = /_discovery {
        discovery_status;
    }
--- request
POST /_discovery
--- error_code: 405



=== TEST 3: access control is nginx's own
--- config
    location = /_discovery {
        deny all;
        discovery_status;
    }
--- request
GET /_discovery
--- error_code: 403
