# discovery_state when two processes save at once: a table saved late never
# replaces a newer one in the file.  A shim preloaded into nginx holds one
# save in fsync() until the test lets it go, so that the interleaving is
# forced, not hoped for: the first worker saves the master's table
# (generation 1) at its start and is held there, the other worker polls,
# publishes and saves generation 2, and only then does the first one go on.
use lib 't/lib';
use File::Temp qw(tempdir);

our $Dir;
BEGIN {
    $Dir = tempdir(CLEANUP => 1);

    # fsync() of "<dir>/table.state.XXXXXX.tmp" holding generation 1 waits
    # while <dir>/hold exists (60 s at most); <dir>/held, created by the
    # one save held, says which process and which file
    open my $c, '>', "$Dir/fsync_gate.c" or die "$Dir/fsync_gate.c: $!";
    print $c <<'_EOC_';
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
fsync(int fd)
{
    static int  (*real)(int);
    char          link[64], path[4096];
    ssize_t       n;
    uint64_t      generation;
    int           held, i;
    const char   *prefix = GATE_DIR "/table.state.";

    if (real == NULL) {
        real = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    }

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);

    if (n > 4 && strncmp(path, prefix, strlen(prefix)) == 0
        && memcmp(path + n - 4, ".tmp", 4) == 0
        && pread(fd, &generation, 8, 16) == 8 && generation == 1
        && access(GATE_DIR "/hold", F_OK) == 0)
    {
        path[n] = '\0';
        held = open(GATE_DIR "/held", O_WRONLY|O_CREAT|O_EXCL, 0644);

        if (held != -1) {
            dprintf(held, "%d %s\n", (int) getpid(), path);
            close(held);

            for (i = 0; i < 6000 && access(GATE_DIR "/hold", F_OK) == 0; i++) {
                usleep(10000);
            }
        }
    }

    return real(fd);
}
_EOC_
    close $c;

    my @cc = ('cc', '-shared', '-fPIC', '-O2', qq(-DGATE_DIR="$Dir"),
              '-o', "$Dir/fsync_gate.so", "$Dir/fsync_gate.c", '-ldl');
    if (system(@cc) != 0) {
        require Test::More;
        Test::More::plan(skip_all => 'cannot build the fsync() shim: no cc?');
    }

    # nginx inherits it; Test::Nginx also passes it to the workers
    $ENV{LD_PRELOAD} = join ' ', "$Dir/fsync_gate.so",
                                 grep { defined } $ENV{LD_PRELOAD};
}

use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use Time::HiRes qw(sleep time);

master_on();
workers(2);
no_shuffle();
no_root_location();

$ENV{TEST_NGINX_STATE_DIR} = $Dir;
$ENV{TEST_NGINX_MOCK_PORT} = free_port();

# the first poll takes 2 s: the first worker has long started, and saved
# the master's table, when the other publishes the first poll's
mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/doc' => [ { delay => 2,
                      body => '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}' } ],
    },
);

# the generation in a state file's header: u64, little-endian, at 16
sub state_generation {
    my $path = shift;
    open my $fh, '<:raw', $path or return "none ($!)";
    my $n = read $fh, my $head, 32;
    return "none (a header of $n bytes)" unless $n == 32;
    my ($lo, $hi) = unpack 'V V', substr $head, 16, 8;
    return $hi * 2**32 + $lo;
}

sub status_generation {
    my $res = DiscoveryTest::http_get($ENV{TEST_NGINX_SERVER_PORT}, '/_discovery')
              || '';
    return $res =~ /"generation":\s*(\d+)/ ? $1 : "none in: $res";
}


sub race {
    my $state = "$Dir/table.state";
    my ($pid, $tmp);

    my $held = poll_until(sub {
        open my $fh, '<', "$Dir/held" or return 0;
        my $line = <$fh>;
        ($pid, $tmp) = defined $line && $line =~ /^(\d+) (\S+)\n/;
        return defined $tmp;
    }, 10);
    Test::More::ok($held, "the save of the master's table is held in fsync()");

    my $newer = poll_until(sub { state_generation($state) =~ /^\d+$/
                                 && state_generation($state) > 1 }, 10);
    Test::More::ok($newer, 'a newer table is saved meanwhile: generation '
                           . state_generation($state));

    unlink "$Dir/hold" or die "unlink $Dir/hold: $!";

    Test::More::ok(poll_until(sub { defined $tmp && !-e $tmp }, 10),
                   'the held save is over');
    Test::More::is(state_generation($state), status_generation(),
                   "the state file holds the status page's table");
}

END { unlink "$Dir/hold" }

open my $hold, '>', "$Dir/hold" or die "$Dir/hold: $!";
close $hold;

use_defaults();

run_tests();

__DATA__

=== TEST 1: a table saved late does not replace a newer one in the state file
--- http_config
    discovery_state $TEST_NGINX_STATE_DIR/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc interval=1s;
--- init
main::race();
--- request
GET /a/1
--- response_body
mock GET /a/1
