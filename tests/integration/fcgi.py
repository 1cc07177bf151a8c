"""A minimal FastCGI client (FastCGI 1.0 specification, records of type
BEGIN_REQUEST, PARAMS, STDIN, STDOUT, END_REQUEST), so tests can talk to the
responder's socket directly and hold a request half-sent."""

import socket
import struct

FCGI_BEGIN_REQUEST = 1
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_STDERR = 7
FCGI_RESPONDER = 1


def _record(rtype, content, req_id=1):
    out = b""
    # Content longer than 65535 bytes goes in several records.
    chunks = [content[i:i + 65535] for i in range(0, len(content), 65535)] or [b""]
    for c in chunks:
        pad = (8 - len(c) % 8) % 8
        out += struct.pack(">BBHHBB", 1, rtype, req_id, len(c), pad, 0) + c + b"\0" * pad
    return out


def _nv(name, value):
    def ln(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return ln(len(name)) + ln(len(value)) + name + value


class Conn:
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def begin(self, params, keep=False, req_id=1):
        """Begin a request; keep asks the responder to keep the connection for the next."""
        self.s.sendall(_record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", FCGI_RESPONDER, 1 if keep else 0),
                               req_id))
        body = b"".join(_nv(k, v) for k, v in params.items())
        self.s.sendall(_record(FCGI_PARAMS, body, req_id))
        self.s.sendall(_record(FCGI_PARAMS, b"", req_id))

    def send_stdin(self, data, req_id=1):
        self.s.sendall(_record(FCGI_STDIN, data, req_id))

    def end_stdin(self, req_id=1):
        self.s.sendall(_record(FCGI_STDIN, b"", req_id))

    def read_response(self):
        """Read until END_REQUEST; return (status, headers dict lower-case, body)."""
        buf = b""
        out = b""
        ended = False
        while not ended:
            while len(buf) < 8:
                d = self.s.recv(65536)
                if not d:
                    raise ConnectionError("connection closed before END_REQUEST")
                buf += d
            _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
            while len(buf) < 8 + clen + plen:
                d = self.s.recv(65536)
                if not d:
                    raise ConnectionError("connection closed inside a record")
                buf += d
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if rtype == FCGI_STDOUT:
                out += content
            elif rtype == FCGI_END_REQUEST:
                ended = True
        head, _, body = out.partition(b"\r\n\r\n")
        headers = {}
        status = 200
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "status" in headers:
            status = int(headers["status"].split()[0])
        return status, headers, body

    def close(self):
        self.s.close()


def request(path, method, uri, body=b"", extra=None):
    """One complete request; returns (status, headers, body)."""
    c = Conn(path)
    params = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": uri.split("?")[0],
              "QUERY_STRING": uri.partition("?")[2], "CONTENT_LENGTH": str(len(body)),
              "GATEWAY_INTERFACE": "CGI/1.1"}
    params.update(extra or {})
    c.begin(params)
    if body:
        c.send_stdin(body)
    c.end_stdin()
    try:
        return c.read_response()
    finally:
        c.close()
