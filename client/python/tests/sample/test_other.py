"""The other fixtures: a socket by fd handoff, the lease factory."""

import socket


def test_socket_fixture_accepts(portd_socket):
    portd_socket.listen()
    port = portd_socket.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        conn, _ = portd_socket.accept()
        c.sendall(b"x")
        assert conn.recv(1) == b"x"
        c.close()
        conn.close()


def test_lease_factory(portd_lease, portd_client):
    udp = portd_lease(2, proto="udp")
    assert udp.proto == "udp" and len(udp.ports) == 2
    claimed = portd_lease(hold="exclusive").claim()
    assert claimed.held is False
    mine = {x.id for x in portd_client.list()}
    assert {udp.id, claimed.id} <= mine
    assert udp.name.endswith("test_lease_factory")
