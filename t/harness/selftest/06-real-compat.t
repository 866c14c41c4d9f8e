# Self-test: what suites of other modules rely on in the real Test::Nginx:
# TEST_NGINX_IGNORE_MISSING_DIRECTIVES, sections t/harness does not
# implement, and Test::Nginx::LWP, each in a subprocess.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use SelfTest;
use Test::More;

# A block using a directive nginx lacks is skipped, check by check, with
# the real one's reason; with the setting unset it fails (02-failures.t).
for my $hup (0, 1) {
    my $mode = $hup ? 'HUP mode' : 'a restart per block';
    my ($exit, $out) = run_fixture('missing-directive.fixture',
        TEST_NGINX_IGNORE_MISSING_DIRECTIVES => 1,
        ($hup ? (TEST_NGINX_USE_HUP => 1) : ()));
    is($exit, 0, "missing directive, $mode: the fixture passes") or diag($out);
    like($out, qr/^1\.\.9$/m, "$mode: the plan") or diag($out);
    my @skipped = $out =~ /^ok \d+ # skip .*TEST 2: .* - (.*)$/mg;
    is(scalar @skipped, 3, "$mode: TEST 2's three checks are skipped")
        or diag($out);
    is(scalar(grep { /tests skipped due to the lack of directive bogus_directive_xyz/ }
                   @skipped),
       3, "$mode: for the lack of the directive") or diag($out);
    like($out, qr/^ok \d+ - .*TEST 3: after - response_body/m,
         "$mode: the next block runs");
}

# Unimplemented sections: a dry run, plus a skip for each check of theirs.
my ($exit, $out) = run_fixture('unimplemented.fixture');
is($exit, 0, 'unimplemented sections: the fixture passes') or diag($out);
like($out, qr/^1\.\.10$/m, 'the plan') or diag($out);
my @skipped = $out =~ /^ok \d+ # skip (.*)$/mg;
is(scalar(grep { /TEST 1: .*--- tcp_listen \(not implemented by t\/harness\)/ } @skipped),
   5, "TEST 1's five checks, tcp_query's and tcp_query_len's included, are skipped")
    or diag($out);
like($out, qr/^ok \d+ # skip .*TEST 2: .* - stap_out - tests skipped due to env TEST_NGINX_USE_STAP is not set$/m,
     'stap_out is skipped as the real one does without TEST_NGINX_USE_STAP');
like($out, qr/^ok \d+ - .*TEST 2: .* - response_body/m,
     'and the rest of TEST 2 runs');
is(scalar(grep { /TEST 3: .*--- http2/ } @skipped), 2,
   "TEST 3's two checks are skipped");

# Test::Nginx::LWP: the whole file is skipped, not failed.
($exit, $out) = run_fixture('lwp.fixture');
is($exit, 0, 'a file using Test::Nginx::LWP does not fail') or diag($out);
like($out, qr/^1\.\.0 # SKIP Test::Nginx::LWP is not provided by t\/harness/m,
     'it is skipped') or diag($out);

done_testing();
