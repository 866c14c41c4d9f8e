# Self-test: the harness must FAIL on wrong expectations, nginx start-up
# failures and timeouts. Runs fixtures/wrong-expectations.fixture in a
# subprocess, in which exactly one test per block is wrong.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use SelfTest;
use Test::More;

my ($exit, $out) = run_fixture('wrong-expectations.fixture');
my @failed = $out =~ /^not ok \d+ - (.*)$/mg;

isnt($exit, 0, 'the fixture exits with a failure status');

my %expected = (
    1  => qr/TEST 1: .* - response_body - response is expected/,
    2  => qr/TEST 2: .* - status code ok/,
    3  => qr/TEST 3: .* - header X-Foo ok/,
    4  => qr/TEST 4: .* - header X-Foo not present in the raw headers/,
    5  => qr/TEST 5: .* - pattern "WRONG pattern never logged" should match a line in error\.log/,
    6  => qr/TEST 6: .* - pattern "\[error\]" should not match any line in error\.log but matches line ".*No such file/,
    7  => qr/TEST 7: .* - response_body_like - response is expected/,
    8  => qr/TEST 8: .* - response_body - response is expected \(repeated req 0, req 1\)/,
    9  => qr/TEST 9: .* - failed to start nginx/,
    10 => qr/TEST 10: .* - die as expected/,
    11 => qr/ERROR: client socket timed out - .*TEST 11:/,
    12 => qr/TEST 12: .* - grep_error_log_out/,
);
for my $n (sort { $a <=> $b } keys %expected) {
    my @hits = grep { /TEST $n:/ } @failed;
    is(scalar @hits, 1, "TEST $n fails exactly once")
        or diag(join "\n", @hits);
    like($hits[0] // '', $expected{$n}, "TEST $n fails for the right reason");
}
is(scalar @failed, scalar keys %expected, 'no other test failed')
    or diag($out);

like($out, qr/^#\s+-WRONG$/m, 'a diff is shown for a wrong response body');
like($out, qr/unknown directive "bogus_directive_xyz"/,
     "nginx's start-up error is shown when it fails to start");
like($out, qr/^ok \d+ - .*TEST 8: .* - response_body - response is expected \(repeated req 0, req 0\)$/m,
     'the first request of TEST 8 passes');

done_testing();
