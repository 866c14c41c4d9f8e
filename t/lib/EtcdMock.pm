package EtcdMock;

# The answers of etcd's v3 JSON gateway that the registry's tests serve
# from mock_service (DiscoveryTest.pm): keys and values in base64, under
# the default prefix, revisions as strings as etcd writes them.

use strict;
use warnings;
use Exporter 'import';
use MIME::Base64 qw(encode_base64);

our @EXPORT = qw(b64 header kv key range count_requests);

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

# how many times a mock's request log (one path a line) holds PATH
sub count_requests {
    my ($file, $path) = @_;
    open my $fh, '<', $file or return 0;
    return scalar grep { $_ eq "$path\n" } <$fh>;
}

1;
