# discovery_state in a directory the workers can write: nothing planted
# there makes nginx write through it.  The master runs as root and never
# writes the file; the workers run as nobody, as in production.
use lib 't/lib';

BEGIN {
    if ($> != 0) {
        require Test::More;
        Test::More::plan(skip_all => 'the workers run as nobody: needs root');
    }

    # read by Test::Nginx when it writes nginx.conf; nobody's group is
    # "nogroup" on Debian, "nobody" elsewhere
    my $group = getgrgid((getpwnam 'nobody')[3]);
    $ENV{TEST_NGINX_WORKER_USER} = "nobody $group";
}

use Test::Nginx::Socket 'no_plan';
use DiscoveryTest;
use File::Temp qw(tempdir);
use Time::HiRes ();

master_on();
workers(2);
no_shuffle();
no_root_location();

our $Nobody = getpwnam('nobody');
our $Top = tempdir(CLEANUP => 1);
chmod 0755, $Top or die "chmod $Top: $!";
$ENV{TEST_NGINX_STATE_TOP} = $Top;
$ENV{TEST_NGINX_MOCK_PORT} = free_port();

# one directory per block, owned by the worker user as the README asks,
# with a file nginx must never write: "precious", owned by $owner
sub state_dir {
    my ($n, $owner) = @_;
    my $dir = "$Top/$n";
    mkdir $dir or die "mkdir $dir: $!";
    chown $Nobody, $Nobody, $dir or die "chown $dir: $!";
    open my $fh, '>', "$dir/precious" or die $!;
    print $fh "precious\n";
    close $fh;
    chown $owner, $owner, "$dir/precious" or die "chown: $!";
    return $dir;
}

# symbolic links to "precious" at the names the state file's temporary
# copies used to have, "<state>.<pid>.tmp", for each of @pids
sub plant {
    my ($dir, @pids) = @_;
    for my $pid (@pids) {
        symlink "$dir/precious", "$dir/table.state.$pid.tmp"
            or die "symlink: $!";
    }
}

# the pids the next processes will have, as far as a test can tell
sub next_pids {
    my $n = shift;
    open my $fh, '<', '/proc/sys/kernel/ns_last_pid' or return ();
    chomp(my $last = <$fh>);
    open $fh, '<', '/proc/sys/kernel/pid_max' or return ();
    chomp(my $max = <$fh>);
    return map { ($last + $_) % $max } 1 .. $n;
}

sub worker_pids {
    open my $fh, '<', $Test::Nginx::Util::PidFile or die "no pid file: $!";
    chomp(my $master = <$fh>);
    return ($master, grep { /^\d+$/ } split /\s+/, `pgrep -P $master`);
}

sub wait_file {
    my ($path, $timeout) = @_;
    return wait_for("$path to be written", sub { -e $path }, $timeout);
}

# until the state file in $dir is a regular file, written at $since or
# later (a time), holding $needle (a route path: the snapshot keeps its
# strings as they are) when given, and no temporary file is left beside
# it, but the router image file written after it: the write is over
sub wait_written {
    my ($dir, %opt) = @_;
    my $state = "$dir/table.state";
    return wait_for("$state written"
                    . ($opt{needle} ? " with \"$opt{needle}\"" : ''), sub {
        return 0 if -l $state || !-f _;
        return 0 if $opt{since} && (Time::HiRes::stat($state))[9] < $opt{since};
        if ($opt{needle}) {
            open my $fh, '<', $state or return 0;
            my $content = do { local $/; <$fh> };
            return 0 if index($content, $opt{needle}) < 0;
        }
        return -f "$state.image"
               && !grep { !-l && !m{/precious$} && !m{/table\.state(\.image)?$} }
                       glob "$dir/*";
    }, 10);
}

# what must hold after whatever nginx did: "precious" is intact, every
# planted link is still there and still a link to it, and the state file
# is a regular file written by a worker
sub check_dir {
    my ($dir, $planted) = @_;

    open my $fh, '<', "$dir/precious" or die $!;
    my $content = do { local $/; <$fh> };
    Test::More::is($content, "precious\n", "$dir/precious is intact");

    my @links = grep { -l } glob "$dir/table.state.*.tmp";
    Test::More::is(scalar @links, $planted, "the $planted links are left");
    Test::More::is(scalar(grep { readlink($_) eq "$dir/precious" } @links),
                   $planted, 'each still points to precious');

    my @other = grep { !-l && !m{/precious$} && !m{/table\.state(\.image)?$} }
                glob "$dir/*";
    Test::More::is("@other", '', 'no temporary file is left');

    for my $file ("$dir/table.state", "$dir/table.state.image") {
        Test::More::ok(!-l $file && -f _, "$file is a regular file");
        my @st = lstat $file;
        Test::More::is($st[4], $Nobody,
                       "$file written by a worker (owned by nobody)");
    }
}

our $Dir1 = state_dir(1, 0);
our $Dir2 = state_dir(2, $Nobody);
our $Dir3 = state_dir(3, 0);

# before the first block's nginx starts: its master's pid is among these
our $Planted1 = 2000;
plant($Dir1, next_pids($Planted1));

my $doc1 = '{"routes": [{"path": "/a/{id}", "methods": ["GET"]}]}';
my $doc2 = '{"routes": [{"path": "/a/{id}", "methods": ["GET"]},'
           . ' {"path": "/b/{id}", "methods": ["GET"]}]}';

mock_service(
    port => $ENV{TEST_NGINX_MOCK_PORT},
    paths => {
        '/hang'   => [ { hang => 1 } ],
        '/change' => [ { body => $doc1 }, { body => $doc2 } ],
        '/doc'    => [ { body => $doc1 } ],
    },
);

use_defaults(no_error_log => "[alert]\n[emerg]\n[crit]\n[error]");

run_tests();

__DATA__

=== TEST 1: at start, the table is written by a worker, through no planted link
--- http_config
    discovery_state $TEST_NGINX_STATE_TOP/1/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/hang timeout=10s;
--- init
main::wait_written($main::Dir1);
main::check_dir($main::Dir1, $main::Planted1);
--- request
GET /a/1
--- error_code: 503



=== TEST 2: tables published by the workers go through no planted link
--- http_config
    discovery_state $TEST_NGINX_STATE_TOP/2/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/change interval=1s;
--- init
DiscoveryTest::wait_ready();
my @pids = main::worker_pids();
main::plant($main::Dir2, @pids);
DiscoveryTest::wait_status(qr{"path":"/b/\{id\}"});
main::wait_written($main::Dir2, needle => "/b/{id}");
main::check_dir($main::Dir2, scalar @pids);
--- request
GET /b/1
--- response_body
mock GET /b/1



=== TEST 3: a reload writes through no planted link
--- http_config
    discovery_state $TEST_NGINX_STATE_TOP/3/table.state;
    discovery_service s http://127.0.0.1:$TEST_NGINX_MOCK_PORT uri=/doc;
--- init
DiscoveryTest::wait_ready();
main::wait_file("$main::Dir3/table.state");
my @pids = main::worker_pids();
main::plant($main::Dir3, @pids);
my $port = $ENV{TEST_NGINX_MOCK_PORT};
my $reloaded_at = Time::HiRes::time();
my $outcome = DiscoveryTest::reload_config(sub {
    my $conf = shift;
    $conf =~ s{(discovery_service s .*\n)}
              {$1    discovery_service t http://127.0.0.1:$port uri=/hang timeout=20s;\n};
    return $conf;
});
Test::More::is($outcome, 'reloaded', 'the reload adding service t');
DiscoveryTest::wait_status(qr/"name":"t"/);
main::wait_written($main::Dir3, since => $reloaded_at);
main::check_dir($main::Dir3, scalar @pids);
--- request
GET /a/3
--- response_body
mock GET /a/3
