#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# rawhttp.py - send raw bytes to an HTTP server and report what came back:
# every status line, then whether the server closed the connection.
"""rawhttp.py HOST:PORT FILE [--timeout SECONDS]

Sends the bytes of FILE (exactly, no added CRLF) over one TCP connection,
half-closes nothing, and reads until the server closes the connection or
SECONDS (default 10) pass without a byte. Prints one line per response
status line found ("HTTP/1.1 400 Bad Request" -> "400"), then "closed" (the
server ended the connection) or "open" (it was still open when the reading
stopped). Exit status 0, or 2 for a usage error; a refused connection prints
"refused".
"""
import socket
import sys


def main(argv):
    args = argv[1:]
    timeout = 10.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2 or ":" not in args[0]:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = args[0].rsplit(":", 1)
    with open(args[1], "rb") as f:
        data = f.read()
    try:
        s = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError:
        print("refused")
        return 0
    out = b""
    state = "open"
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                state = "closed"
                break
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        state = "closed"
    finally:
        s.close()
    # status lines start a response: at the beginning or right after a body
    pos = 0
    while True:
        i = out.find(b"HTTP/1.", pos)
        if i < 0:
            break
        line = out[i : out.find(b"\r\n", i) if out.find(b"\r\n", i) >= 0 else len(out)]
        parts = line.split(b" ")
        if len(parts) >= 2 and parts[1].isdigit() and len(parts[1]) == 3:
            print(parts[1].decode())
        pos = i + 7
    print(state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
