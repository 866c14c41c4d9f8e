# discovery_api: the management API, its reads, writes and errors.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

master_on();
workers(2);
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


our $API = '/_discovery/api';

sub ok_is { Test::More::is($_[0], $_[1], $_[2]) }

# the same as api(), failing the block unless the status is $want
sub api_ok {
    my ($want, $method, $path, $body, %h) = @_;
    my ($status, $doc, $raw) = api($method, $path, $body, %h);
    Test::More::is($status, $want, "$method $path answers $want")
        or Test::More::diag($raw);
    return $doc || {};
}

sub error_code {
    my ($method, $path, $body, %h) = @_;
    my ($status, $doc, $raw) = api($method, $path, $body, %h);
    return "$status " . ($doc && $doc->{error} ? "$doc->{error}{code}"
                                                 . ($doc->{error}{status} == $status
                                                    ? '' : ' (status differs)')
                                               : "not an error: $raw");
}

# what a plain request gets: "STATUS body"
sub fetch {
    my ($method, $path) = @_;
    my ($status, undef, $raw) = api($method, $path);
    my ($body) = $raw =~ /\r\n\r\n(.*)/s;
    $body =~ s/\n$// if defined $body;
    return "$status " . (defined $body ? $body : '');
}

# until every one of 8 fresh connections (any worker) gets $want
sub wait_fetch {
    my ($method, $path, $want, $timeout) = @_;
    my $seen;
    return DiscoveryTest::wait_for("$method $path to answer $want", sub {
        for (1 .. 8) {
            $seen = fetch($method, $path);
            return 0 unless $seen eq $want;
        }
        return 1;
    }, $timeout || 1.5, sub { $seen });
}

sub by { my ($key, $list) = @_; return { map { $_->{$key} => $_ } @$list } }

sub routes_of {
    my $doc = shift;
    return join ' ', sort map { "$_->{service}:$_->{path}" } @{ $doc->{routes} };
}

use_defaults(http_config => $HttpConfig, config => $Config);

run_tests();

__DATA__

=== TEST 1: GET / says what the API is; every answer is JSON, not cached
--- init
DiscoveryTest::wait_ready();
--- request
GET /_discovery/api/
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body_like: ^\{"api_version":1,"module_version":"[^"]+","write":true,"overrides_persist":"reload","generation":\d+\}$



=== TEST 2: the location without its trailing slash, and write=off, say so
--- request
GET /ro
--- response_body_like: ^\{"api_version":1,"module_version":"[^"]+","write":false,"overrides_persist":"reload","generation":\d+\}$



=== TEST 3: GET /services and /services/{name}: the status page's services, drained or not
--- init
DiscoveryTest::wait_ready();
my $doc = main::api_ok(200, 'GET', "$::API/services");
main::ok_is(join(' ', map { $_->{name} } @{ $doc->{services} }), 'users billing', 'services in order');
main::ok_is($doc->{generation} > 0 ? 1 : 0, 1, 'a generation');
my $u = main::by(name => $doc->{services})->{users};
main::ok_is(join(',', map { $_ // 'null' } @$u{qw(state drained version failures last_error)}),
      'healthy,0,1,0,null', 'users: state, drained, version, failures, last_error');
main::ok_is(join(' ', map { $_->{path} } @{ $u->{routes} }), '/users/{id:int} /users/me /shared/{id}', 'users: routes');
main::ok_is(ref $u->{rejected}, 'ARRAY', 'users: rejected');
my $one = main::api_ok(200, 'GET', "/ro/services/billing");
main::ok_is($one->{name} . ' ' . scalar @{ $one->{routes} }, 'billing 3', 'one service, through /ro');
main::ok_is(main::error_code('GET', "$::API/services/nope"), '404 ServiceNotFound', 'unknown service');
main::ok_is(main::error_code('GET', "/roservices"), '404 NotFound', 'a sibling of "location /ro" is not below it');
--- request
GET /_discovery/api/services/users
--- response_body_like: ^\{"name":"users","url":"http://127\.0\.0\.1:\d+","upstream":"127\.0\.0\.1:\d+","state":"healthy","drained":false,



=== TEST 4: GET /routes: owner, state, filters combined, conflicts and overlaps
--- init
DiscoveryTest::wait_ready();
my $all = main::api_ok(200, 'GET', "$::API/routes");
main::ok_is(main::routes_of($all), 'billing:/billing/{rest:path} billing:/shared/{id} billing:/users/{name} '
      . 'users:/shared/{id} users:/users/me users:/users/{id:int}', 'every published route');
my $r = main::by(path => [ grep { $_->{service} eq 'users' } @{ $all->{routes} } ])->{'/users/{id:int}'};
main::ok_is(join(',', $r->{state}, $r->{drained} ? 1 : 0, $r->{name}, "@{$r->{tags}}",
           $r->{auth_required} ? 1 : 0, $r->{protocol}, "@{$r->{methods}}",
           defined $r->{override} ? 'override' : 'null'),
      'healthy,0,get_user,users,1,http,GET PUT,null', 'a route\'s fields');
main::ok_is(scalar @{ $all->{conflicts} }, 1, 'the conflict');
main::ok_is($all->{conflicts}[0]{service} . '<' . $all->{conflicts}[0]{shadowed_by}, 'billing<users', 'its loser and winner');
main::ok_is(scalar(@{ $all->{overlaps} }) > 0 ? 1 : 0, 1, 'overlaps');
main::ok_is(main::routes_of(main::api_ok(200, 'GET', "$::API/routes?service=billing")),
      'billing:/billing/{rest:path} billing:/shared/{id} billing:/users/{name}', 'service=');
main::ok_is(main::routes_of(main::api_ok(200, 'GET', "$::API/routes?path=/users/7")),
      'billing:/users/{name} users:/users/{id:int}', 'path=');
main::ok_is(main::routes_of(main::api_ok(200, 'GET', "$::API/routes?path=%2Fusers%2F7&method=PUT")),
      'users:/users/{id:int}', 'path= and method=');
main::ok_is(main::routes_of(main::api_ok(200, 'GET', "$::API/routes?path=/billing/a/b&method=POST&service=billing")),
      'billing:/billing/{rest:path}', 'all three');
main::ok_is(main::routes_of(main::api_ok(200, 'GET', "$::API/routes?service=users&path=/billing/x")), '', 'none');
--- request
GET /_discovery/api/routes?service=nobody
--- response_body_like: ^\{"generation":\d+,"routes":\[\],"conflicts":\[



=== TEST 5: GET /explain: the router's answer, and why each candidate won or lost
--- init
DiscoveryTest::wait_ready();
my $e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/users/7");
main::ok_is(join(',', @$e{qw(status service route)}), '200,users,/users/{id:int}', 'the winner');
main::ok_is($e->{upstream} =~ /^127\.0\.0\.1:\d+$/ ? 1 : 0, 1, 'its upstream');
my %c = map {; "$_->{service} $_->{route}" => $_ } @{ $e->{candidates} };
main::ok_is(join(' ', sort keys %c), 'billing /users/{name} users /users/{id:int}', 'the candidates');
main::ok_is($c{'users /users/{id:int}'}{result}, 'won', 'won');
main::ok_is($c{'billing /users/{name}'}{result} . ': ' . $c{'billing /users/{name}'}{why},
      'lost: shadowed by /users/{id:int} of users: its typed segment 2 takes precedence over a plain one (literal, typed, plain, path)',
      'shadowed, and by what precedence');
$e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/shared/1");
%c = map {; "$_->{service} $_->{route}" => $_ } @{ $e->{candidates} };
main::ok_is($c{'billing /shared/{id}'}{why}, 'conflict loser: users publishes the same route first', 'conflict loser');
$e = main::api_ok(200, 'GET', "$::API/explain?method=DELETE&path=/users/me");
main::ok_is($e->{status} . ' ' . $e->{reason}, '405 the path is routed, but not for DELETE; Allow: GET, HEAD, OPTIONS', 'status 405');
main::ok_is(join('|', map { $_->{why} } @{ $e->{candidates} }), 'it does not take DELETE|it does not take DELETE', 'method not published');
$e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/nowhere");
main::ok_is("$e->{status} " . scalar @{ $e->{candidates} } . " " . ($e->{service} // 'null'), '404 0 null', '404, no candidate');
$e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/users/%2e%2e/x");
main::ok_is($e->{status}, 400, 'a path that is not canonical');
main::ok_is($e->{reason} =~ /with redirect a 308 / ? 1 : 0, 1, "redirect's status as the handler answers it: $e->{reason}");
$e = main::api_ok(200, 'GET', "$::API/explain?method=POST&path=/nowhere&content_type=application/grpc");
main::ok_is($e->{reason} =~ /grpc-status 12/ ? 1 : 0, 1, 'a gRPC request\'s answer');
main::ok_is(main::error_code('GET', "$::API/explain?path=/users/7"), '400 BadRequest', 'no method');
main::ok_is(main::error_code('GET', "$::API/explain?method=GET"), '400 BadRequest', 'no path');
# what routing does, explain says
for my $req (['GET', '/users/7'], ['PUT', '/users/8'], ['GET', '/users/bob'], ['GET', '/shared/2'],
             ['POST', '/billing/a/b'], ['DELETE', '/users/me'], ['GET', '/nowhere']) {
    my ($m, $p) = @$req;
    my $x = main::api_ok(200, 'GET', "$::API/explain?method=$m&path=$p");
    my $got = main::fetch($m, $p);
    my ($status) = $got =~ /^(\d+)/;
    my $who = $got =~ /^200 (\w+) / ? $1 : 'null';
    main::ok_is("$x->{status} " . ($x->{status} == 200 ? $x->{service} : 'null'), "$status $who", "explain agrees with routing: $m $p");
}
--- request
GET /_discovery/api/explain?method=GET&path=/users/me
--- response_body_like: ^\{"status":200,"service":"users","route":"/users/me",



=== TEST 6: write=off: every write answers 405 MethodDisabled
--- init
DiscoveryTest::wait_ready();
main::ok_is(main::error_code('POST', '/ro/overrides', '{"action": "disable", "path": "/users/me"}'), '405 MethodDisabled', 'POST /overrides');
main::ok_is(main::error_code('PATCH', '/ro/services/users', '{"drain": true}'), '405 MethodDisabled', 'PATCH');
main::ok_is(main::error_code('POST', '/ro/services/users/poll', '{}'), '405 MethodDisabled', 'poll');
main::ok_is(main::error_code('DELETE', '/ro/overrides/o1', ''), '405 MethodDisabled', 'DELETE');
main::ok_is(main::api_ok(200, 'GET', '/ro/overrides')->{overrides_persist}, 'reload', 'reads still work');
--- request
GET /users/me
--- response_body
users GET /users/me



=== TEST 7: unknown paths, methods a path does not take, writes without JSON or from another site
--- init
DiscoveryTest::wait_ready();
main::ok_is(main::error_code('GET', "$::API/nope"), '404 NotFound', 'unknown path');
main::ok_is(main::error_code('GET', "$::API/services/users/poll/x"), '404 NotFound', 'too deep');
main::ok_is(main::error_code('POST', "$::API/services/users", '{}'), '405 MethodNotAllowed', 'POST on a service');
my ($s, $d, $raw) = main::api('DELETE', "$::API/routes", '');
main::ok_is(($raw =~ /\r\nAllow: GET, HEAD\r\n/ ? 'Allow' : $raw), 'Allow', 'the 405 says what the path takes');
main::ok_is(main::error_code('POST', "$::API/overrides", '{}', 'Content-Type' => 'text/plain'), '415 UnsupportedMediaType', 'text/plain');
main::ok_is(main::error_code('POST', "$::API/overrides", 'action=disable', 'Content-Type' => 'application/x-www-form-urlencoded'),
      '415 UnsupportedMediaType', 'a form');
main::ok_is(main::error_code('POST', "$::API/services/users/poll", '', 'Content-Type' => undef), '415 UnsupportedMediaType', 'no type');
main::ok_is(main::error_code('PATCH', "$::API/services/users", '{"drain": false}', Origin => 'http://evil.example'),
      '403 CrossOrigin', 'another site');
main::ok_is(main::error_code('PATCH', "$::API/services/users", '{"drain": false}', Origin => 'null'),
      '403 CrossOrigin', 'an opaque origin');
main::api_ok(200, 'PATCH', "$::API/services/users", '{"drain": false}', Origin => 'http://localhost',
             'Content-Type' => 'application/json; charset=utf-8');
--- request
GET /_discovery/api/overrides
--- response_body
{"overrides_persist":"reload","overrides":[]}



=== TEST 8: bad overrides are refused with their code, and nothing is half-applied
--- init
DiscoveryTest::wait_ready();
my @bad = (
    ['{"action": "disable", "path": "/a"', '400 MalformedJson'],
    ['[1, 2]', '400 MalformedJson'],
    ["{\"action\": \"disable\", \"path\": \"/a\", \"reason\": \"\xff\"}", '400 MalformedJson'],
    ['{"action": "delete", "path": "/a"}', '400 UnknownAction'],
    ['{"path": "/a"}', '400 UnknownAction'],
    ['{"action": "disable", "path": "a/{x"}', '400 BadTemplate'],
    ['{"action": "disable", "path": "/a/{x:nope}"}', '400 BadTemplate'],
    ['{"action": "disable"}', '400 BadTemplate'],
    ['{"action": "pin", "path": "/a", "service": "nobody"}', '400 UnknownService'],
    ['{"action": "disable", "path": "/a", "service": "nobody"}', '400 UnknownService'],
    ['{"action": "disable", "path": "/a", "methods": []}', '400 BadMethods'],
    ['{"action": "disable", "path": "/a", "methods": ["GET", "*"]}', '400 BadMethods'],
    ['{"action": "disable", "path": "/a", "methods": ["G T"]}', '400 BadMethods'],
    ['{"action": "disable", "path": "/a", "methods": "GET"}', '400 BadMethods'],
    ['{"action": "pin", "path": "/a"}', '400 BadField'],
    ['{"action": "disable", "path": "/a", "expires": -1}', '400 BadField'],
    ['{"action": "disable", "path": "/a", "expires": "soon"}', '400 BadField'],
    ['{"action": "disable", "path": "/a", "id": "mine"}', '400 BadField'],
    ['{"action": "disable", "path": "/a", "color": "red"}', '400 BadField'],
    ['{"action": "disable", "path": "/a", "reason": "' . ('x' x 70000) . '"}', '400 BodyTooLarge'],
);
for my $b (@bad) {
    main::ok_is(main::error_code('POST', "$::API/overrides", $b->[0]), $b->[1], substr($b->[0], 0, 60));
}
main::ok_is(main::error_code('PATCH', "$::API/services/users", '{"drain": "yes"}'), '400 BadField', 'drain not a boolean');
main::ok_is(main::error_code('PATCH', "$::API/services/users", '{"drain": true, "x": 1}'), '400 BadField', 'drain and more');
main::ok_is(main::error_code('PATCH', "$::API/services/users", '{}'), '400 BadField', 'no drain');
main::ok_is(main::error_code('PATCH', "$::API/services/nope", '{"drain": true}'), '404 ServiceNotFound', 'drain nobody');
main::ok_is(main::error_code('DELETE', "$::API/overrides/o1", ''), '404 OverrideNotFound', 'no such override');
main::ok_is(main::api_ok(200, 'GET', "$::API/services/users")->{drained} ? 1 : 0, 0, 'not drained');
# a body nginx keeps in a file (over client_body_buffer_size) is read from it
my $o = main::api_ok(201, 'POST', "$::API/overrides",
    '{"action": "disable", "path": "/nowhere/{x}", "reason": "padded"' . (' ' x 40000) . '}');
main::ok_is($o->{reason}, 'padded', 'a large body');
main::api_ok(200, 'DELETE', "$::API/overrides/$o->{id}", '');
--- request
GET /_discovery/api/overrides
--- response_body
{"overrides_persist":"reload","overrides":[]}



=== TEST 9: disable: the route answers 404 "Endpoint disabled" on every worker, shows in /routes, /explain and the status page, until deleted
--- init
DiscoveryTest::wait_ready();
my $o = main::api_ok(201, 'POST', "$::API/overrides",
    '{"action": "disable", "path": "/users/{id:int}", "methods": ["put"], "reason": "incident 42"}');
main::ok_is(join(',', @$o{qw(action path reason)}, "@{$o->{methods}}", $o->{service} // 'null', $o->{expires} // 'null'),
      'disable,/users/{id:int},incident 42,PUT,null,null', 'the override as kept');
main::ok_is($o->{id} =~ /\S/ && $o->{created} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ ? 1 : 0, 1, 'id and created');
main::wait_fetch('PUT', '/users/7', '404 {"detail": "Endpoint disabled", "path": "/users/7"}', 1);
main::ok_is(main::fetch('GET', '/users/7'), '200 users GET /users/7', 'other methods are not disabled');
my $r = main::by(path => main::api_ok(200, 'GET', "$::API/routes?service=users")->{routes})->{'/users/{id:int}'};
main::ok_is("$r->{override}{id} $r->{override}{action}", "$o->{id} disable", '/routes shows it');
my $e = main::api_ok(200, 'GET', "$::API/explain?method=PUT&path=/users/7");
main::ok_is("$e->{status} " . ($e->{service} // 'null') . " $e->{route}", '404 null /users/{id:int}', 'explain: 404');
my %c = map { ($_->{service} // 'override') . " $_->{result}" => $_ } @{ $e->{candidates} };
main::ok_is($c{'override won'}{why}, "disabled by override $o->{id}", 'explain: the override won');
main::ok_is($c{'users lost'}{why}, "disabled by override $o->{id}", 'explain: the route lost to it');
my $page = DiscoveryTest::http_get($ENV{TEST_NGINX_SERVER_PORT}, '/_discovery');
main::ok_is($page =~ /"overrides":\[\{"id":"\Q$o->{id}\E","action":"disable","path":"\/users\/\{id:int\}"/ ? 1 : 0, 1,
      'the status page shows it');
main::ok_is(main::api_ok(200, 'GET', "$::API/overrides")->{overrides}[0]{id}, $o->{id}, 'GET /overrides');
main::ok_is(main::api_ok(200, 'DELETE', "$::API/overrides/$o->{id}", '')->{deleted}, $o->{id}, 'deleted');
main::wait_fetch('PUT', '/users/7', '200 users PUT /users/7', 1);
main::ok_is(main::error_code('DELETE', "$::API/overrides/$o->{id}", ''), '404 OverrideNotFound', 'deleted once');
--- request
GET /_discovery
--- response_body_like: "overrides":\[\]



=== TEST 10: pin sends a conflict's route to its loser; add routes a template nobody publishes
--- init
DiscoveryTest::wait_ready();
main::ok_is(main::fetch('GET', '/shared/1'), '200 users GET /shared/1', 'the conflict\'s winner');
my $pin = main::api_ok(201, 'POST', "$::API/overrides",
    '{"action": "pin", "path": "/shared/{x}", "methods": ["*"], "service": "billing"}');
my $add = main::api_ok(201, 'POST', "$::API/overrides",
    '{"action": "add", "path": "/legacy/{id:int}", "methods": ["GET"], "service": "billing", "reason": "migrating"}');
main::wait_fetch('GET', '/shared/1', '200 billing GET /shared/1', 1);
main::wait_fetch('GET', '/legacy/5', '200 billing GET /legacy/5', 1);
main::ok_is(main::fetch('POST', '/legacy/5') =~ /^405 / ? 1 : 0, 1, 'an added route takes its methods only');
my $e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/shared/1");
my %c = map {; "$_->{service} $_->{route}" => $_ } @{ $e->{candidates} };
main::ok_is("$e->{service} " . $c{'billing /shared/{x}'}{why}, "billing pinned by override $pin->{id}", 'explain: pinned');
main::ok_is($c{'users /shared/{id}'}{why}, "pinned to billing by override $pin->{id}", 'explain: the winner lost to the pin');
my $routes = main::api_ok(200, 'GET', "$::API/routes?path=/legacy/5");
main::ok_is(main::routes_of($routes) . " " . $routes->{routes}[0]{override}{action}, 'billing:/legacy/{id:int} add', '/routes shows the added route');
--- request
GET /_discovery/api/overrides
--- response_body_like: "action":"pin".*"action":"add"



=== TEST 11: drain: new requests to the service's routes answer 503 with Retry-After, the state stays
--- init
DiscoveryTest::wait_ready();
my $s = main::api_ok(200, 'PATCH', "$::API/services/billing", '{"drain": true}');
main::ok_is("$s->{name} $s->{state} " . ($s->{drained} ? 'drained' : 'not'), 'billing healthy drained', 'the answer');
main::wait_fetch('GET', '/billing/x', '503 {"detail": "Service drained", "path": "/billing/x", "service": "billing"}', 1);
main::ok_is(main::fetch('GET', '/users/1'), '200 users GET /users/1', 'other services are not');
my $e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/billing/x");
main::ok_is("$e->{status} $e->{service}", '503 billing', 'explain says 503');
main::ok_is(main::by(name => main::api_ok(200, 'GET', "$::API/services")->{services})->{billing}{drained} ? 1 : 0, 1, '/services');
main::ok_is(main::by(path => main::api_ok(200, 'GET', "$::API/routes?service=billing")->{routes})->{'/billing/{rest:path}'}{drained} ? 1 : 0,
      1, '/routes');
main::api_ok(200, 'PATCH', "$::API/services/billing", '{"drain": false}');
main::wait_fetch('GET', '/billing/x', '200 billing GET /billing/x', 1);
main::api_ok(200, 'PATCH', "$::API/services/billing", '{"drain": true}');
DiscoveryTest::wait_status(qr/"name":"billing","url":"[^"]*","upstream":"[^"]*","state":"healthy","drained":true/);
--- request
GET /billing/y
--- error_code: 503
--- response_headers
Retry-After: 1



=== TEST 12: POST /services/{name}/poll answers after the poll, with its outcome
--- http_config eval: $::HttpConfig =~ s/interval=1s/interval=60s/gr
--- init
DiscoveryTest::wait_ready();
my $before = main::api_ok(200, 'GET', "$::API/services/users")->{last_check};
sleep 1.1;
my $after = main::api_ok(200, 'POST', "$::API/services/users/poll", '');
main::ok_is($after->{name}, 'users', 'the service');
main::ok_is(($after->{last_check} gt $before) ? 1 : 0, 1, "polled again: $before, then $after->{last_check}");
main::ok_is(main::error_code('POST', "$::API/services/nobody/poll", ''), '404 ServiceNotFound', 'unknown service');
--- request
GET /users/me
--- response_body
users GET /users/me



=== TEST 13: an override that expires is removed, and its route comes back
--- init
DiscoveryTest::wait_ready();
my $o = main::api_ok(201, 'POST', "$::API/overrides", '{"action": "disable", "path": "/users/me", "expires": 1}');
main::ok_is($o->{expires} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ ? 1 : 0, 1, 'expires: a time');
main::wait_fetch('GET', '/users/me', '404 {"detail": "Endpoint disabled", "path": "/users/me"}', 1);
main::wait_fetch('GET', '/users/me', '200 users GET /users/me', 3.5);
main::ok_is(scalar @{ main::api_ok(200, 'GET', "$::API/overrides")->{overrides} }, 0, 'gone');
--- request
GET /_discovery/api/overrides
--- response_body
{"overrides_persist":"reload","overrides":[]}
--- error_log
discovery: an override expired



=== TEST 14: overrides and drain survive a reload (HUP)
--- init
DiscoveryTest::wait_ready();
main::api_ok(201, 'POST', "$::API/overrides", '{"action": "disable", "path": "/users/me"}');
main::api_ok(200, 'PATCH', "$::API/services/billing", '{"drain": true}');
main::wait_fetch('GET', '/users/me', '404 {"detail": "Endpoint disabled", "path": "/users/me"}', 1);
main::ok_is(DiscoveryTest::reload_config(sub { $_[0] . "\n# reloaded\n" }), 'reloaded', 'reloaded');
main::wait_fetch('GET', '/billing/x', '503 {"detail": "Service drained", "path": "/billing/x", "service": "billing"}', 1);
main::ok_is(scalar @{ main::api_ok(200, 'GET', "$::API/overrides")->{overrides} }, 1, 'the override is kept');
--- request
GET /users/me
--- error_code: 404
--- response_body
{"detail": "Endpoint disabled", "path": "/users/me"}



=== TEST 15: discovery_api with "discovery_route on" is refused; so is a bad parameter
--- config
    location /api/ {
        discovery_route on;
        discovery_api;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*"discovery_api" in a location with "discovery_route on" is never served/
--- no_error_log
[alert]



=== TEST 16: discovery_api write=yes is an error
--- config
    location /api/ {
        discovery_api write=yes;
    }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "write=yes"/
--- no_error_log
[alert]



=== TEST 17: a pin goes before precedence: the typed and literal routes of another service its template covers answer through the pinned service, for the pin's methods
--- init
DiscoveryTest::wait_ready();
main::ok_is(main::fetch('GET', '/users/7'), '200 users GET /users/7', 'typed beats plain');
main::ok_is(main::fetch('GET', '/users/me'), '200 users GET /users/me', 'literal beats plain');
my $pin = main::api_ok(201, 'POST', "$::API/overrides",
    '{"action": "pin", "path": "/users/{name}", "methods": ["*"], "service": "billing"}');
main::wait_fetch('GET', '/users/7', '200 billing GET /users/7', 1);
main::ok_is(main::fetch('GET', '/users/me'), '200 billing GET /users/me', 'the literal route too');
main::ok_is(main::fetch('PUT', '/users/7'), '200 users PUT /users/7', 'a method the pin lacks is routed as before');
my $e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/users/7");
main::ok_is("$e->{status} $e->{service} $e->{route}", '200 billing /users/{name}', 'explain agrees');
my %c = map {; "$_->{service} $_->{route}" => $_ } @{ $e->{candidates} };
main::ok_is($c{'users /users/{id:int}'}{why}, "pinned to billing by override $pin->{id}, which goes before precedence",
      'explain: the typed route lost to the pin');
main::api_ok(200, 'DELETE', "$::API/overrides/$pin->{id}", '');
main::wait_fetch('GET', '/users/7', '200 users GET /users/7', 1);
--- request
GET /_discovery/api/overrides
--- response_body
{"overrides_persist":"reload","overrides":[]}



=== TEST 18: a disable goes before precedence too: what its template matches answers 404, whichever route would have taken it
--- init
DiscoveryTest::wait_ready();
my $o = main::api_ok(201, 'POST', "$::API/overrides",
    '{"action": "disable", "path": "/users/{name}", "methods": ["GET"]}');
main::wait_fetch('GET', '/users/7', '404 {"detail": "Endpoint disabled", "path": "/users/7"}', 1);
main::ok_is(main::fetch('GET', '/users/me'), '404 {"detail": "Endpoint disabled", "path": "/users/me"}', 'the literal route too');
main::ok_is(main::fetch('PUT', '/users/7'), '200 users PUT /users/7', 'a method the disable lacks is routed as before');
my $e = main::api_ok(200, 'GET', "$::API/explain?method=GET&path=/users/7");
main::ok_is("$e->{status} $e->{route}", '404 /users/{name}', 'explain agrees');
my %c = map {; ($_->{service} // 'override') . " $_->{route}" => $_ } @{ $e->{candidates} };
main::ok_is($c{'users /users/{id:int}'}{why}, "disabled by override $o->{id}, which goes before precedence",
      'explain: the typed route lost to the disable');
main::api_ok(200, 'DELETE', "$::API/overrides/$o->{id}", '');
main::wait_fetch('GET', '/users/7', '200 users GET /users/7', 1);
--- request
GET /_discovery/api/overrides
--- response_body
{"overrides_persist":"reload","overrides":[]}



=== TEST 19: a zone with no room for more overrides: 503 ZoneFull in JSON, and nothing changed
--- http_config eval: "discovery_zone 64k;\n" . $::HttpConfig
--- init
DiscoveryTest::wait_ready();
my ($status, $doc, $raw, $made);
for my $i (1 .. 200) {
    ($status, $doc, $raw) = main::api('POST', "$::API/overrides",
        qq({"action": "disable", "path": "/full/$i", "reason": ") . ('r' x 1000) . '"}');
    last if $status != 201;
    $made = $i;
}
main::ok_is($status . ' ' . ($doc && $doc->{error} ? $doc->{error}{code} : "not JSON: $raw"), '503 ZoneFull', 'the zone is full');
main::ok_is(scalar @{ main::api_ok(200, 'GET', "$::API/overrides")->{overrides} }, $made, 'the refused one is not kept');
--- request
GET /users/me
--- response_body
users GET /users/me
--- error_log eval
qr/\[alert\].*discovery zone "discovery" of \d+ bytes is full: the API's overrides/
--- no_error_log
[emerg]
