#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""sockfwd.py - forward every connection accepted on one socket to another,
bytes as they are, both ways (a TCP/Unix-socket relay for tests).

    sockfwd.py LISTEN TARGET      LISTEN, TARGET: tcp:HOST:PORT or unix:PATH

The e2e tests run in network namespaces of their own, where a server of the
host's loopback (the one radosgw a `make test-s3pg` run shares) cannot be
reached by TCP; a Unix socket in the file system can. tests/tools/s3pg.sh
relays unix:DIR/s3.sock to radosgw's port, and tests/e2e/lib.sh relays
127.0.0.1:7480 in the test's namespace to that socket. A half-close is passed
on (an HTTP client may shut its side down after a request); the connection
ends when both sides have. Runs until SIGTERM/SIGINT.
"""
import asyncio
import os
import signal
import sys


def parse(spec):
    kind, _, rest = spec.partition(':')
    if kind == 'tcp':
        host, _, port = rest.rpartition(':')
        return ('tcp', host, int(port))
    if kind == 'unix' and rest:
        return ('unix', rest)
    sys.exit(f'sockfwd.py: {spec}: want tcp:HOST:PORT or unix:PATH')


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(262144)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


async def serve(target):
    async def handle(creader, cwriter):
        try:
            if target[0] == 'tcp':
                treader, twriter = await asyncio.open_connection(target[1], target[2])
            else:
                treader, twriter = await asyncio.open_unix_connection(target[1])
        except OSError:
            cwriter.transport.abort()
            return
        await asyncio.gather(pipe(creader, twriter), pipe(treader, cwriter))
        for w in (cwriter, twriter):
            w.close()
    return handle


async def main(listen, target):
    handle = await serve(target)
    if listen[0] == 'tcp':
        server = await asyncio.start_server(handle, listen[1], listen[2], reuse_address=True)
    else:
        if os.path.exists(listen[1]):
            os.unlink(listen[1])
        server = await asyncio.start_unix_server(handle, listen[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if listen[0] == 'unix' and os.path.exists(listen[1]):
        os.unlink(listen[1])


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: sockfwd.py LISTEN TARGET (tcp:HOST:PORT or unix:PATH)')
    asyncio.run(main(parse(sys.argv[1]), parse(sys.argv[2])))
