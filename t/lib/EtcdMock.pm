package EtcdMock;

# The answers of etcd's v3 JSON gateway that the registry's tests serve
# from mock_service (DiscoveryTest.pm): keys and values in base64, under
# the default prefix, revisions as strings as etcd writes them.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);

our @EXPORT = qw(b64 header kv key range range_reads count_requests
                 mock_share_pairs share_answers);

sub b64 { encode_base64(shift, '') }

# a response header at revision REV
sub header {
    my $rev = shift;
    return qq({"cluster_id":"1","member_id":"2","revision":"$rev",)
         . qq("raft_term":"3"});
}

# the service KEY with VALUE, written at revision REV
sub kv {
    my ($key, $value, $rev) = @_;
    my $k = b64("/nginx-discovery/services/$key");
    my $v = b64($value);
    return qq({"key":"$k","create_revision":"$rev","mod_revision":"$rev",)
         . qq("version":"1","value":"$v"});
}

# KEY under the prefix (pollers/NAME, routes/NAME) with VALUE, written at
# revision REV, bound to LEASE when given
sub key {
    my ($key, $value, $rev, $lease) = @_;
    my $k = b64("/nginx-discovery/$key");
    my $v = b64($value);
    my $l = defined $lease ? qq(,"lease":"$lease") : '';
    return qq({"key":"$k","create_revision":"$rev","mod_revision":"$rev",)
         . qq("version":"1","value":"$v"$l});
}

# a range read's answer at revision REV
sub range {
    my ($rev, @kvs) = @_;
    return '{"header":' . header($rev) . ',"kvs":[' . join(',', @kvs)
         . '],"count":"' . scalar(@kvs) . '"}';
}

# A mock_service handler that reads as etcd does, for a paged read: the
# keys of %$kvs (NAME under the prefix => [VALUE, MOD_REVISION, LEASE]) at
# revision REV, from the request's key to its range_end, at most its
# limit of them ("more" when there are others).  compact_once => 1: the
# first request at a revision (a page after the first) is refused as
# compacted, as when a compaction passed it meanwhile
sub range_reads {
    my (%a) = @_;
    my $p = '/nginx-discovery/';
    my %json = map {
        ("$p$_" => key($_, $a{kvs}{$_}[0], $a{kvs}{$_}[1], $a{kvs}{$_}[2]))
    } keys %{ $a{kvs} };
    my @keys = sort keys %json;
    my $compact = $a{compact_once};
    my $refused = '"etcdserver: mvcc: required revision has been compacted"';

    return sub {
        my $req = JSON::PP::decode_json(shift);
        my $from = decode_base64($req->{key});
        my $end = decode_base64($req->{range_end} // '');
        my $limit = $req->{limit} // 0;

        if ($req->{revision} && $compact) {
            $compact = 0;
            return { status => 400, body => qq({"error":$refused,)
                                            . qq("message":$refused,"code":11}) };
        }

        my @in = grep { $_ ge $from && $_ lt $end } @keys;
        my $count = @in;
        splice @in, $limit if $limit && @in > $limit;
        # keys_only: the keys without their values
        my $kv = $req->{keys_only}
                 ? sub { $json{$_[0]} =~ s/,"value":"[^"]*"//r }
                 : sub { $json{$_[0]} };
        return { body => '{"header":' . header($a{rev}) . ',"kvs":['
                         . join(',', map { $kv->($_) } @in) . ']'
                         . (@in < $count ? ',"more":true' : '')
                         . qq(,"count":"$count"}) };
    };
}

# What etcd answers a share=on gateway by default: its lease (255, TTL
# 3 s) granted and kept alive, its txns succeeding, its watch created;
# and a service's document of one route, /svc/own
sub share_answers {
    return (
        lease => '{"header":' . header(5) . ',"ID":"255","TTL":"3"}',
        alive => '{"result":{"header":' . header(5)
                 . ',"ID":"255","TTL":"3"}}',
        txn => '{"header":' . header(6) . ',"succeeded":true}',
        # another gateway's lease, kept alive: etcd says 1 s, the least
        # it says of a lease kept alive every 500 ms (1.5 s and more left)
        ttl => '{"header":' . header(5) . ',"ID":"4096","TTL":"1",'
               . '"grantedTTL":"3"}',
        created => '{"result":{"header":' . header(5) . ',"created":true}}',
        doc => '{"status":"healthy","version":"1","routes":'
               . '[{"path":"/svc/own","methods":["GET"]}]}',
    );
}

# For each NAME of %$etcd, an etcd (its answers over share_answers()'s) and a
# service answering its doc, on ports in $ENV{TEST_NGINX_ETCD_NAME} and
# $ENV{TEST_NGINX_SVC_NAME} (the service's from %$ports if given), logging
# into DIR/NAME.etcd, DIR/NAME.bodies and DIR/NAME.polls (t/233, t/234)
sub mock_share_pairs {
    my (%a) = @_;
    my %answer = share_answers();
    my %defaults = (
        '/v3/watch' => [ { body => $answer{created}, hang => 1 } ],
        '/v3/lease/grant' => [ { body => $answer{lease} } ],
        '/v3/lease/keepalive' => [ { body => $answer{alive} } ],
        '/v3/kv/txn' => [ { body => $answer{txn} } ],
        '/v3/lease/timetolive' => [ { body => $answer{ttl} } ],
    );
    for my $name (keys %{ $a{etcd} }) {
        my $port = DiscoveryTest::free_port();
        my $svc = $a{ports}{$name} // DiscoveryTest::free_port();
        $ENV{'TEST_NGINX_ETCD_' . uc $name} = $port;
        $ENV{'TEST_NGINX_SVC_' . uc $name} = $svc;

        DiscoveryTest::mock_service(
            port => $port,
            log => "$a{dir}/$name.etcd",
            bodies => "$a{dir}/$name.bodies",
            paths => { %defaults, %{ $a{etcd}{$name} } },
        );
        DiscoveryTest::mock_service(
            port => $svc,
            log => "$a{dir}/$name.polls",
            paths => { '/health?include_routes=true'
                       => [ { body => $answer{doc} } ] },
        );
    }
}

# how many times a mock's request log (one path a line) holds PATH
sub count_requests {
    my ($file, $path) = @_;
    open my $fh, '<', $file or return 0;
    return scalar grep { $_ eq "$path\n" } <$fh>;
}

1;
