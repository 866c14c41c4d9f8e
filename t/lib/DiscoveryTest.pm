# DiscoveryTest: helpers shared by the t/*.t suites, usable with the real
# Test::Nginx::Socket and with t/harness alike.
#
#   use_defaults(%sections)       section defaults for a suite's blocks
#   free_port()                   a TCP port nobody listens on
#   blackhole_port()              a TCP port whose connections are never
#                                 made (a listener whose queue is full)
#   mock_service(%opts)           a scripted HTTP service in a child process
#   wait_for($what, $probe, $timeout)
#                                 until $probe returns true; fails the
#                                 block when it times out
#   wait_ready($path, $timeout)   until the status page shows no pending
#   wait_status($re, $timeout)    until the status page matches $re
#   poll_until($probe, $timeout)  until $probe returns true; no report
#   http_get($port, $path)        a tiny client for init hooks
#   temp_paths($dir)              http{} lines keeping nginx's temporary
#                                 files under $dir
#   reload_config($edit)          edits the running nginx's nginx.conf,
#                                 sends HUP and says how the reload went
#   nginx_start($http, %opts)     an nginx of our own, for tests that
#                                 signal it (plain Test::More scripts)
#   module_version()              the version in debian/changelog, which
#                                 the module reports
package DiscoveryTest;

use strict;
use warnings;

use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

use Exporter 'import';
our @EXPORT = qw(use_defaults free_port blackhole_port mock_service wait_for
                 poll_until wait_ready wait_status http_get nginx_start
                 reload_config temp_paths module_version);

my @children;

# the block being run, for the names of failed waits
my $block_running;

# The gateway most blocks test: routing, and the status page that
# wait_ready() and wait_status() read.
our $GatewayConfig = <<'_EOC_';
    location / {
        discovery_route on;
        proxy_pass http://$discovery_upstream;
    }
    location = /_discovery {
        discovery_status;
    }
_EOC_

# use_defaults(section => text, ...): each text is used by the blocks that
# have no section of that name.  config and no_error_log default to the
# gateway above and to no alert, emerg or crit; undef leaves one out.
sub use_defaults {
    my %defaults = (
        config => $GatewayConfig,
        no_error_log => "[alert]\n[emerg]\n[crit]",
        @_,
    );

    main::add_block_preprocessor(sub {
        my $block = shift;

        for my $section (sort keys %defaults) {
            next if !defined $defaults{$section} || defined $block->$section;
            $block->set_value($section, $defaults{$section});
        }
        $block_running = $block;

        # some versions of Test::Nginx go on with what this returns
        return $block;
    });
}

# free_port(): a port is chosen long before a test listens on it, and any
# connection made meanwhile (nginx's upstreams, polls, the other test file
# prove runs beside this one) could be given it as its local port.  So the
# port stays bound here, not listening, until the script exits: the kernel
# never hands a bound port to an outgoing connection, another free_port()
# (which binds without SO_REUSEADDR) passes it by, and whoever listens on it
# with SO_REUSEADDR (nginx, mock_service, etcd, Python's servers) still can.
my @reserved;

sub free_port {
    my $sock = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
    ) or die "cannot find a free port: $!";
    setsockopt($sock, SOL_SOCKET, SO_REUSEADDR, 1)
        or die "free_port: SO_REUSEADDR: $!";
    push @reserved, $sock;
    return $sock->sockport;
}

# blackhole_port(): a connect to it stays unanswered until the client gives
# up, as to a host that drops SYNs: its listener never accepts, and its
# queue (2 connections for a backlog of 1) is filled here.  They stay open
# until the test script exits.
my @blackholes;

sub blackhole_port {
    my $listen = IO::Socket::INET->new(
        Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', ReuseAddr => 1,
    ) or die "blackhole_port: cannot listen: $!";
    my $port = $listen->sockport;
    push @blackholes, $listen;
    for (1 .. 3) {
        my $c = IO::Socket::INET->new(
            PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
            Blocking => 0,
        ) or die "blackhole_port: cannot connect to $port: $!";
        push @blackholes, $c;
    }
    sleep 0.2;    # the handshakes that fill the queue
    return $port;
}

# mock_service(port => P, paths => { PATH => [R1, R2, ...], ... }, log => FILE)
# Answers the n-th request for PATH (query included) with Rn, the last one
# repeating; each path counts on its own, so that each test block can have
# its own sequence.  Other paths are a backend: 200 "mock METHOD PATH".
# R is a hash:
#   { status => 200, body => '...' }  a normal answer
#   { hang => 1 }                      accepts and never answers
#   { close => 1 }                     closes without answering
#   { delay => 0.5, ... }              waits before answering
#   { trickle => 0.2, ... }            sends the body a byte at a time
#   { reset => 1, ... }                sends half the body, then closes
#   { type => 'text/html', ... }       another Content-Type
#   { hold => 10, ... }                sends the body, then holds the
#                                      connection open that long
#   { handler => sub { ... } }         the request's body in, R out
# Each request's path is appended to FILE when given, to count polls;
# with bodies => FILE2, "PATH BODY" a line for each request with a body.
sub mock_service {
    my %opt = @_;
    my $listen = IO::Socket::INET->new(
        Listen => 64, LocalAddr => '127.0.0.1', LocalPort => $opt{port},
        Proto => 'tcp', ReuseAddr => 1,
    ) or die "mock_service: cannot listen on $opt{port}: $!";

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid) {
        close $listen;
        push @children, $pid;
        return $pid;
    }

    my %count;
    my @hung;

    # a client that gives up must not kill the mock; trickles run apart
    $SIG{PIPE} = 'IGNORE';
    $SIG{CHLD} = 'IGNORE';

    while (my $c = $listen->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            my $got = sysread $c, $req, 4096, length $req;
            last unless $got;
        }
        # a client that closed before its request's end is not answered
        if ($req !~ /\r\n\r\n/) {
            close $c;
            next;
        }
        my ($path) = $req =~ m{^\S+ (\S+)};
        my ($method) = $req =~ m{^(\S+)};

        if ($req =~ /^Content-Length:\s*(\d+)/mi) {
            my $want = index($req, "\r\n\r\n") + 4 + $1;
            while (length $req < $want) {
                my $got = sysread $c, $req, $want - length $req, length $req;
                last unless $got;
            }
            if ($opt{bodies} && open my $fh, '>>', $opt{bodies}) {
                print $fh (defined $path ? $path : '?'), ' ',
                    substr($req, index($req, "\r\n\r\n") + 4), "\n";
                close $fh;
            }
        }
        my $asked = substr($req, index($req, "\r\n\r\n") + 4);

        # etcd's range reads come in pages: a page after the first (read
        # at the first's revision) is answered as the first was
        my $script = $opt{paths}{ defined $path ? $path : '' }
            || [ { status => 200, body => "mock $method $path\n" } ];
        my $n = (defined $path && $path eq '/v3/kv/range'
                 && $asked =~ /"revision":/ && $count{$path})
                ? $count{$path} - 1 : $count{$path}++;
        my $r = $script->[ $n < @$script ? $n : $#$script ];

        # a handler answers from the request's body: {status, body, ...}
        if ($r->{handler}) {
            $r = $r->{handler}->($asked);
        }

        if ($opt{log} && open my $fh, '>>', $opt{log}) {
            print $fh (defined $path ? $path : '?'), "\n";
            close $fh;
        }

        if ($r->{hang}) {
            push @hung, $c;
            next;
        }
        if ($r->{trickle} || $r->{hold}) {
            my $pid = fork;
            if (defined $pid && $pid > 0) {
                close $c;
                next;
            }
        }
        sleep $r->{delay} if $r->{delay};

        if (!$r->{close}) {
            my $body = defined $r->{body} ? $r->{body} : '';
            my $status = $r->{status} || 200;
            $c->autoflush(1);
            # hold: the body, then the connection open for that long, as
            # a watch that goes on (its end is the connection's)
            print $c "HTTP/1.1 $status X\r\n",
                "Content-Type: ", $r->{type} || 'application/json', "\r\n",
                $r->{hold} ? () : ("Content-Length: ", length($body), "\r\n"),
                "Connection: close\r\n\r\n";
            if ($r->{hold}) {
                print $c $body;
                sleep $r->{hold};
                POSIX::_exit(0);
            } elsif ($r->{trickle}) {
                for my $ch (split //, $body) {
                    print $c $ch or last;
                    sleep $r->{trickle};
                }
                POSIX::_exit(0);
            } elsif ($r->{reset}) {
                print $c substr($body, 0, length($body) / 2);
            } else {
                print $c $body;
            }
        }
        close $c;
    }
    POSIX::_exit(0);
}

END {
    local $?;    # waitpid must not become the test script's exit code
    for my $pid (@children) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
}

# wait_for($what, $probe, $timeout, $last): calls $probe until it returns
# true, and returns that.  After $timeout seconds (5 by default) it fails
# the block, as a test named after the block and $what, shows $last->()
# when given (what was seen instead), and returns false: a test whose
# precondition never came cannot pass by what it checks next.
sub wait_for {
    my ($what, $probe, $timeout, $last) = @_;
    $timeout ||= 5;

    my $got = poll_until($probe, $timeout);
    return $got if $got;

    my $name = $block_running ? $block_running->name . ' - ' : '';
    Test::More::fail("${name}timed out after ${timeout}s waiting for $what");
    if ($last) {
        my $seen = $last->();
        Test::More::diag('last seen: '
                         . (defined $seen ? substr($seen, -1500) : 'nothing'));
    }
    return $got;
}

# poll_until($probe, $timeout): calls $probe every 20 ms until it returns
# true or $timeout seconds have passed; returns its last value.  For a
# caller that reports the outcome itself.
sub poll_until {
    my ($probe, $timeout) = @_;
    my $deadline = time + $timeout;

    while (1) {
        my $got = $probe->();
        return $got if $got || time >= $deadline;
        sleep 0.02;
    }
}

sub _status_page {
    my $path = shift;
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    return http_get($port, $path || '/_discovery');
}

# Waits until the status page matches $re (a string or qr//).
sub wait_status {
    my ($re, $timeout) = @_;
    my $page;

    return wait_for("the status page to match $re", sub {
        $page = _status_page();
        return defined $page && $page =~ $re;
    }, $timeout, sub { $page });
}

# nginx_start($http_block_text, workers => 2) starts nginx in the
# foreground as a child, with the module loaded and everything under a
# temporary prefix.  Returns { pid, dir, port }; $TEST_NGINX_SERVER_PORT in
# the text is the port of a server block added for the test's requests.
sub nginx_start {
    my ($http, %opt) = @_;
    require File::Temp;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $port = free_port();
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $modules = join '', map { "load_module $_;\n" }
        split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
    my $workers = $opt{workers} || 2;
    my $temp_paths = temp_paths($dir);

    $http =~ s/\$TEST_NGINX_SERVER_PORT/$port/g;
    mkdir "$dir/logs";
    open my $fh, '>', "$dir/nginx.conf" or die $!;
    print $fh <<"_EOC_";
${modules}user root;
daemon off;
master_process on;
worker_processes $workers;
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
$temp_paths$http
}
_EOC_
    close $fh;

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        { exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf";
        }
        POSIX::_exit(127);
    }
    wait_for("nginx to write $dir/logs/nginx.pid",
             sub { -s "$dir/logs/nginx.pid" }, 5);
    return { pid => $pid, dir => $dir, port => $port };
}

# temp_paths($dir): http{} lines keeping every temporary file under $dir:
# Debian's defaults point to /var/lib/nginx.  (t/lib/nginx.sh has the
# same for shell scripts, t/lib/discovery_test.py for Python.)
sub temp_paths {
    my $dir = shift;
    return join '', map { "    ${_}_temp_path $dir/$_;\n" }
        qw(client_body proxy fastcgi uwsgi scgi);
}

# The newest entry's version in debian/changelog, the one the module is
# built with.  (t/lib/discovery_test.py has the same for Python.)
sub module_version {
    my $changelog = __FILE__ =~ s{[^/]*$}{../../debian/changelog}r;
    open my $fh, '<', $changelog or die "$changelog: $!";
    my $first = <$fh>;
    close $fh;
    $first =~ /^\S+ \(([^)]+)\)/ or die "$changelog: no version";
    return $1;
}

sub http_get {
    my ($port, $path, $timeout) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
        Timeout => $timeout || 2,
    ) or return undef;
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $res = <$s>;
    close $s;
    return $res;
}

# reload_config($edit, $timeout): for an init hook that reloads the nginx
# of its block with another configuration, successful or not.  $edit gets
# the text of nginx.conf and returns the text to load; the master is sent
# HUP.  Returns 'failed' once the master logged an [emerg] (the old
# configuration stays), 'reloaded' once the new workers run and no old
# one is left, or 'timeout'.  nginx.conf is put back as it was, so that
# the harness still finds the block's own configuration there.
sub reload_config {
    my ($edit, $timeout) = @_;
    no warnings "once";
    my $conf = $Test::Nginx::Util::ConfFile;
    my $errlog = $Test::Nginx::Util::ErrLogFile;

    open my $in, '<', $conf or die "reload_config: $conf: $!";
    my $old = do { local $/; <$in> };
    close $in;

    open my $pf, '<', $Test::Nginx::Util::PidFile
        or die "reload_config: no pid file: $!";
    chomp(my $master = <$pf>);
    close $pf;

    my $pos = -s $errlog || 0;

    open my $out, '>', $conf or die "reload_config: $conf: $!";
    print $out $edit->($old);
    close $out;

    kill 'HUP', $master or die "reload_config: kill HUP $master: $!";

    my $outcome = 'timeout';
    my $deadline = time + ($timeout || 10);

    while (time < $deadline) {
        open my $log, '<', $errlog or last;
        seek $log, $pos, 0;
        my $text = do { local $/; <$log> };
        close $log;

        if ($text =~ /\[emerg\]/) {
            $outcome = 'failed';
            last;
        }

        # the master tells the old workers to quit 100 ms after starting
        # the new ones; an old worker then renames itself
        if ($text =~ /start worker process/) {
            sleep 0.2;
            if (!grep { /shutting down/ } map { _cmdline($_) }
                                          _children($master))
            {
                $outcome = 'reloaded';
                last;
            }
        }

        sleep 0.05;
    }

    open $out, '>', $conf or die "reload_config: $conf: $!";
    print $out $old;
    close $out;

    return $outcome;
}

sub _children {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/task/$pid/children" or return ();
    my $list = <$fh>;
    close $fh;
    return split ' ', defined $list ? $list : '';
}

sub _cmdline {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/cmdline" or return '';
    my $cmd = <$fh>;
    close $fh;
    return defined $cmd ? $cmd : '';
}

# Waits until the status page (at $path on the test server) lists no
# pending service, so that a test's request sees the first polls done.
sub wait_ready {
    my ($path, $timeout) = @_;
    my $page;

    return wait_for("no pending service on the status page", sub {
        $page = _status_page($path);
        return defined $page && $page =~ m{^HTTP/1\.\d 200}
               && $page !~ /"state":\s*"pending"/;
    }, $timeout, sub { $page });
}

1;
