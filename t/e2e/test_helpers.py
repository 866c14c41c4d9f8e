"""The test helpers' own flaws show as other tests failing at random."""

import errno
import socket

from support import free_port


def test_free_port_is_held_until_a_listener_takes_it():
    port = free_port()
    # a bind without SO_REUSEADDR (another free_port(), a connection's
    # local port) finds it taken
    with socket.socket() as other:
        try:
            other.bind(("127.0.0.1", port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE
        else:
            raise AssertionError("port %d was not held" % port)
    assert free_port() != port
    # a listener with SO_REUSEADDR, as every server the tests start, binds it
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = server.accept()
            conn.close()
