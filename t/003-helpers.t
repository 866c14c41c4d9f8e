# The suites' own helpers (t/lib/DiscoveryTest.pm), where a flaw shows as
# another test failing at random.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Errno qw(EADDRINUSE);
use DiscoveryTest;

# free_port() holds its port until the script exits: an outgoing connection
# or the test file prove runs beside this one cannot take it meanwhile (the
# CI once failed on "mock_service: cannot listen on ...: Address already in
# use"), and a listener with SO_REUSEADDR still can
my $port = free_port();
my $other = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
);
my $errno = $! + 0;
ok(!$other, 'a bind without SO_REUSEADDR finds the port taken');
is($errno, EADDRINUSE, '... as in use');

isnt(free_port(), $port, 'a second free_port() passes it by');

my $dir = tempdir(CLEANUP => 1);
mock_service(port => $port, log => "$dir/log");

sub exchange {
    my ($send, $read) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or return "connect: $!";
    print $c $send;
    return '' unless $read;
    local $/;
    my $got = <$c>;
    return defined $got ? $got : '';
}

# a client that closes before its request's end is not answered, nor
# counted as a request
exchange("GET /cut HTTP/1.0\r\n", 0);
like(exchange("GET /whole HTTP/1.0\r\n\r\n", 1), qr{^HTTP/1\.\d 200 .*mock GET /whole}s,
    'mock_service listens on the reserved port and answers');
open my $fh, '<', "$dir/log" or die "$dir/log: $!";
is(join('', <$fh>), "/whole\n", 'only the whole request is logged');

done_testing;
