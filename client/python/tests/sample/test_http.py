"""A sample suite as a user writes it: 40 tests, each starting a real
http.server on its portd_port (it co-binds: http.server sets SO_REUSEADDR
while portd still holds the port). Each test writes its port to
$SAMPLE_OUT/<test>.port for the run's checks."""

import http.client
import http.server
import os
import socket
import struct
import threading

import pytest


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client closes first

    def do_GET(self):
        body = str(self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("n", range(40))
def test_server_on_its_port(portd_port, n):
    server = http.server.HTTPServer(("", portd_port), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", portd_port, timeout=5)
        conn.request("GET", "/")
        reply = conn.getresponse()
        assert reply.status == 200
        assert reply.read() == str(portd_port).encode()
        # Reset rather than FIN: no TIME_WAIT anywhere on the port.
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        conn.close()
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    with open(os.path.join(os.environ["SAMPLE_OUT"], "%02d.port" % n),
              "w") as f:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "-")
        f.write("%d %s\n" % (portd_port, worker))
