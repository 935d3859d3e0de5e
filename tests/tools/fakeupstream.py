#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""fakeupstream.py - a small fault-injecting upstream registry for pullcache tests.

Serves the read side of the OCI distribution API for content loaded at start
(OCI image layouts such as tests/tools/mkimage.sh writes, or content defined
inline in the scenario), with optional Docker-Hub-like token auth on a separate
port, blob redirects to a separate listener, Docker Hub ratelimit headers, and
rules from a scenario file that replace or damage replies (429, 503, stalled
bodies, resets, wrong bytes, delays). Every request is appended to a JSON-lines
log. See tests/tools/README.md for the scenario format.

Only the Python 3 standard library; binds loopback addresses only.
"""

import argparse
import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import tarfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_D_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = (MT_OCI_INDEX, MT_D_LIST)
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_OCI_INDEX, MT_D_MANIFEST, MT_D_LIST)

DOCKERHUB_429 = (
    '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. '
    'You may increase the limit by authenticating and upgrading: '
    'https://www.docker.com/increase-rate-limit"}]}'
)


def err_body(code, message, detail=None):
    e = {"code": code, "message": message}
    if detail is not None:
        e["detail"] = detail
    return json.dumps({"errors": [e]}, separators=(",", ":"))


NAMED_BODIES = {
    "dockerhub_429": DOCKERHUB_429,
    "toomanyrequests": err_body("TOOMANYREQUESTS", "too many requests"),
    "unavailable": err_body("UNAVAILABLE", "service unavailable"),
    "unknown": err_body("UNKNOWN", "unknown error"),
    "unauthorized": err_body("UNAUTHORIZED", "authentication required"),
    "denied": err_body("DENIED", "requested access to the resource is denied"),
    "manifest_unknown": err_body("MANIFEST_UNKNOWN", "manifest unknown"),
    "blob_unknown": err_body("BLOB_UNKNOWN", "blob unknown to registry"),
    "name_unknown": err_body("NAME_UNKNOWN", "repository name not known to registry"),
    "html_503": "<html><body><h1>503 Service Unavailable</h1>\n"
                "No server is available to handle this request.\n</body></html>\n",
    "empty": "",
}
DEFAULT_ERROR_BODY = {
    429: "dockerhub_429", 401: "unauthorized", 403: "denied", 404: "manifest_unknown",
    500: "unknown", 502: "unavailable", 503: "unavailable", 504: "unavailable",
}

STOP = threading.Event()  # set on SIGTERM/SIGINT: wakes every stall and delay


def log_err(msg):
    sys.stderr.write("fakeupstream: %s\n" % msg)
    sys.stderr.flush()


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


# ---- content -------------------------------------------------------------------------


class Blob:
    """Bytes of a blob: in memory or in a file (read per request, never held)."""

    def __init__(self, digest, data=None, path=None):
        self.digest = digest
        self.data = data
        self.path = path
        self.size = len(data) if data is not None else os.path.getsize(path)

    def read_range(self, start, length):
        if self.data is not None:
            yield self.data[start:start + length]
            return
        with open(self.path, "rb") as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk


class Repo:
    def __init__(self, name):
        self.name = name
        self.tags = {}  # tag -> digest
        self.manifests = {}  # digest -> (media type, bytes)
        self.blobs = {}  # digest -> Blob

    def summary(self):
        return {
            "tags": dict(self.tags),
            "manifests": {d: {"mediaType": mt, "size": len(b)} for d, (mt, b) in self.manifests.items()},
            "blobs": {d: b.size for d, b in self.blobs.items()},
        }


def guess_media_type(doc):
    mt = doc.get("mediaType") if isinstance(doc, dict) else None
    if mt:
        return mt
    if isinstance(doc, dict) and "manifests" in doc:
        return MT_OCI_INDEX
    return MT_OCI_MANIFEST


def load_layout(repo, layout):
    """Add an OCI image layout's tagged images (and all its blobs) to repo."""
    blobdir = os.path.join(layout, "blobs", "sha256")
    if not os.path.isdir(blobdir):
        raise SystemExit("fakeupstream: %s is not an OCI image layout (no blobs/sha256)" % layout)
    for hexd in os.listdir(blobdir):
        d = "sha256:" + hexd
        repo.blobs[d] = Blob(d, path=os.path.join(blobdir, hexd))
    with open(os.path.join(layout, "index.json"), "rb") as f:
        index = json.load(f)

    def add_manifest(desc):
        d = desc["digest"]
        if d in repo.manifests:
            return
        with open(os.path.join(blobdir, d.split(":", 1)[1]), "rb") as f:
            raw = f.read()
        doc = json.loads(raw)
        mt = desc.get("mediaType") or guess_media_type(doc)
        repo.manifests[d] = (mt, raw)
        if mt in INDEX_TYPES:
            for child in doc.get("manifests", []):
                add_manifest(child)

    for desc in index.get("manifests", []):
        add_manifest(desc)
        tag = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if tag:
            repo.tags[tag] = desc["digest"]


def file_bytes(spec, what):
    if "text" in spec:
        return spec["text"].encode()
    if "base64" in spec:
        return base64.b64decode(spec["base64"])
    if "json" in spec:
        return compact(spec["json"])
    if "random" in spec:
        r = random.Random("fakeupstream:" + str(spec.get("seed", "")))
        return r.randbytes(int(spec["random"]))
    raise SystemExit("fakeupstream: %s needs text, base64, json or random" % what)


def make_layer(files):
    """A deterministic gzip'd tar of [(path, bytes)]; returns (diff_id, gzip bytes)."""
    buf = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for path, data in files:
            path = path.strip("/")
            parts = path.split("/")
            for i in range(1, len(parts)):
                dname = "/".join(parts[:i])
                if dname not in seen:
                    seen.add(dname)
                    ti = tarfile.TarInfo(dname)
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    ti.mtime = 1704067200
                    tf.addfile(ti)
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1704067200
            tf.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    return sha256_digest(tar), gzip.compress(tar, compresslevel=6, mtime=0)


_INLINE_CACHE = {}  # (repo, spec as JSON) -> (blobs, manifests, tags): a scenario switch is cheap


def load_inline(repo, spec):
    """Inline content of one repository (see README: content)."""
    key = (repo.name, json.dumps(spec, sort_keys=True))
    hit = _INLINE_CACHE.get(key)
    if hit is None:
        tmp = Repo(repo.name)
        build_inline(tmp, spec)
        hit = _INLINE_CACHE[key] = (tmp.blobs, tmp.manifests, tmp.tags)
    repo.blobs.update(hit[0])
    repo.manifests.update(hit[1])
    repo.tags.update(hit[2])


def build_inline(repo, spec):
    for i, b in enumerate(spec.get("blobs", [])):
        data = file_bytes(b, "%s blob %d" % (repo.name, i))
        d = sha256_digest(data)
        repo.blobs[d] = Blob(d, data=data)
    for tag, img in (spec.get("images") or {}).items():
        docker = img.get("format", "oci") == "docker"
        layers, diff_ids = [], []
        for j, lspec in enumerate(img.get("layers", [])):
            flist = lspec["files"] if "files" in lspec else [lspec]
            files = [(f.get("path", "data/layer%d" % j), file_bytes(f, "%s:%s layer %d" % (repo.name, tag, j)))
                     for f in flist]
            diff, gz = make_layer(files)
            d = sha256_digest(gz)
            repo.blobs[d] = Blob(d, data=gz)
            diff_ids.append(diff)
            layers.append({"mediaType": MT_D_LAYER if docker else MT_OCI_LAYER, "digest": d, "size": len(gz)})
        cfg = compact({
            "created": "2024-01-01T00:00:00Z", "architecture": img.get("architecture", "amd64"), "os": "linux",
            "config": {"Cmd": ["/bin/true"], "Labels": {"org.pullcache.fake.tag": tag}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        cd = sha256_digest(cfg)
        repo.blobs[cd] = Blob(cd, data=cfg)
        mt = MT_D_MANIFEST if docker else MT_OCI_MANIFEST
        man = compact({"schemaVersion": 2, "mediaType": mt,
                       "config": {"mediaType": MT_D_CONFIG if docker else MT_OCI_CONFIG,
                                  "digest": cd, "size": len(cfg)},
                       "layers": layers})
        md = sha256_digest(man)
        repo.manifests[md] = (mt, man)
        repo.tags[tag] = md
    for tag, m in (spec.get("manifests") or {}).items():
        body = m["body"]
        raw = body.encode() if isinstance(body, str) else compact(body)
        doc = json.loads(raw)
        mt = m.get("mediaType") or guess_media_type(doc)
        md = sha256_digest(raw)
        repo.manifests[md] = (mt, raw)
        repo.tags[tag] = md


# ---- scenario ------------------------------------------------------------------------


class Rule:
    def __init__(self, idx, spec):
        self.idx = idx
        self.spec = spec
        self.desc = spec.get("id") or ("rule %d" % idx)
        m = dict(spec.get("match") or {})
        for k in ("method", "kind", "name", "ref", "path", "listener", "min_size", "max_size", "ref_type"):
            if k in spec:
                m[k] = spec[k]
        self.methods = self._set(m.get("method"), upper=True)
        self.kinds = self._set(m.get("kind"))
        self.listeners = self._set(m.get("listener"))
        self.name = re.compile(m["name"]) if "name" in m else None
        self.ref = re.compile(m["ref"]) if "ref" in m else None
        self.ref_type = m.get("ref_type")
        self.path = re.compile(m["path"]) if "path" in m else None
        self.min_size = m.get("min_size")
        self.max_size = m.get("max_size")
        if "replies" in spec:
            self.replies = list(spec["replies"])
            self.nth = None
        else:
            self.replies = [spec.get("reply", "pass")]
            nth = spec.get("nth", "every")
            self.nth = nth if nth == "every" else set(nth if isinstance(nth, list) else [nth])
        self.after = spec.get("after", "pass")
        self.per = spec.get("per", "request")
        if self.after not in ("pass", "repeat", "cycle"):
            raise SystemExit("fakeupstream: rule %d: after must be pass, repeat or cycle" % idx)
        if self.per not in ("request", "rule"):
            raise SystemExit("fakeupstream: rule %d: per must be request or rule" % idx)
        for r in self.replies:
            check_reply(r, idx)
        self.counts = {}

    @staticmethod
    def _set(v, upper=False):
        if v is None:
            return None
        vals = v if isinstance(v, list) else [v]
        return {x.upper() if upper else x for x in vals}

    def matches(self, req):
        if self.methods is not None and req.method not in self.methods:
            return False
        if self.kinds is not None and req.kind not in self.kinds:
            return False
        if self.listeners is not None and req.listener not in self.listeners:
            return False
        if self.name is not None and (req.name is None or not self.name.fullmatch(req.name)):
            return False
        if self.ref is not None and (req.ref is None or not self.ref.fullmatch(req.ref)):
            return False
        if self.ref_type is not None:
            rt = None if req.ref is None else ("digest" if ":" in req.ref else "tag")
            if rt != self.ref_type:
                return False
        if self.path is not None and not self.path.search(req.path):
            return False
        if self.min_size is not None and (req.size is None or req.size < self.min_size):
            return False
        if self.max_size is not None and (req.size is None or req.size > self.max_size):
            return False
        return True

    def pick(self, req):
        """Count this request; return (reply, occurrence) or (None, n) to fall through."""
        key = "*" if self.per == "rule" else (req.listener, req.method, req.path)
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if self.nth is not None:
            if self.nth == "every" or n in self.nth:
                return self.replies[0], n
            return None, n
        if n <= len(self.replies):
            return self.replies[n - 1], n
        if self.after == "repeat":
            return self.replies[-1], n
        if self.after == "cycle":
            return self.replies[(n - 1) % len(self.replies)], n
        return None, n


REPLY_KEYS = {"status", "body", "headers", "content_type", "delay_ms", "stall_after_bytes",
              "stall_seconds", "stall_then", "reset_after_bytes", "close_after_bytes", "wrong_bytes",
              "drop", "rate", "ratelimit_headers", "comment", "pass", "endless", "overlong_bytes",
              "overlong_delay_ms", "length_delta", "redirect_loop", "manifest_body", "hold"}


def check_reply(r, idx):
    if r == "pass":
        return
    if not isinstance(r, dict):
        raise SystemExit("fakeupstream: rule %d: a reply is \"pass\" or an object, not %r" % (idx, r))
    bad = set(r) - REPLY_KEYS
    if bad:
        raise SystemExit("fakeupstream: rule %d: unknown reply keys %s" % (idx, sorted(bad)))
    if "endless" in r and not (r["endless"] is True or (isinstance(r["endless"], int) and r["endless"] > 0)):
        raise SystemExit("fakeupstream: rule %d: endless is true or a byte count > 0" % idx)
    if "manifest_body" in r and not isinstance(r["manifest_body"], str):
        raise SystemExit("fakeupstream: rule %d: manifest_body is a string" % idx)
    if r.get("stall_then", "close") not in ("close", "reset", "finish"):
        raise SystemExit("fakeupstream: rule %d: stall_then must be close, reset or finish" % idx)
    if "body" in r and isinstance(r["body"], str) and r["body"] not in NAMED_BODIES and r["body"].isidentifier() \
            and r["body"].islower() and "_" in r["body"]:
        log_err("rule %d: body %r is not a named body; sent literally" % (idx, r["body"]))


def describe_reply(r):
    if r == "pass":
        return "pass"
    return ",".join("%s=%s" % (k, r[k]) for k in sorted(r) if k not in ("headers", "comment", "body")) or "pass"


class Scenario:
    def __init__(self, doc, source="<inline>"):
        if not isinstance(doc, dict):
            raise SystemExit("fakeupstream: scenario %s: not a JSON object" % source)
        self.source = source
        self.doc = doc
        self.description = doc.get("description", "")
        self.rules = [Rule(i, r) for i, r in enumerate(doc.get("rules", []))]
        auth = doc.get("auth")
        if auth and auth.get("type", "bearer") not in ("bearer", "basic"):
            raise SystemExit("fakeupstream: scenario %s: auth.type must be bearer or basic" % source)
        self.auth = auth
        red = doc.get("redirect")
        if red is True:
            red = {}
        self.redirect = red
        rl = doc.get("ratelimit")
        self.ratelimit = rl
        self.strict_accept = doc.get("strict_accept", "present")
        if self.strict_accept not in ("present", "always", "off"):
            raise SystemExit("fakeupstream: scenario %s: strict_accept must be present, always or off" % source)


def load_scenario_file(ref, scen_dir):
    path = ref
    if not os.path.exists(path):
        cand = os.path.join(scen_dir, ref if ref.endswith(".json") else ref + ".json")
        if os.path.exists(cand):
            path = cand
        else:
            raise SystemExit("fakeupstream: no scenario %r (nor %s)" % (ref, cand))
    with open(path) as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as e:
            raise SystemExit("fakeupstream: scenario %s: %s" % (path, e))
    return doc, path


# ---- server state ------------------------------------------------------------------


class ReqInfo:
    __slots__ = ("listener", "method", "path", "query", "kind", "name", "ref", "size")

    def __init__(self, listener, method, path, query):
        self.listener, self.method, self.path, self.query = listener, method, path, query
        self.kind = self.name = self.ref = self.size = None


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.repos = {}
        self.cli_repos = []
        self.log_path = args.log
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.log = []
        self.seq = 0
        self.in_flight = 0
        self.started = 0
        self.held = 0  # replies waiting for POST /_fake/release (reply key "hold")
        self.release_gen = 0
        self.tokens = {}  # token -> (expiry, set of repos, source)
        self.budgets = {}  # ratelimit source -> remaining
        self.sig_key = os.urandom(16)
        self.ports = {}
        self.scenario = None

    def set_scenario(self, scen):
        with self.lock:
            self.scenario = scen
            self.budgets = {}
            self.tokens = {}
            self.repos = {}
            for name, layout in self.cli_repos:
                self.repos.setdefault(name, Repo(name))
                load_layout(self.repos[name], layout)
            for name, spec in (scen.doc.get("content") or {}).items():
                self.repos.setdefault(name, Repo(name))
                load_inline(self.repos[name], spec)

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry = dict(seq=self.seq, **entry)
            self.log.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry, separators=(",", ":")) + "\n")
                self.log_file.flush()

    def reset_log(self):
        with self.lock:
            self.log = []
            if self.log_file:
                self.log_file.close()
                self.log_file = open(self.log_path, "w", buffering=1)

    def stats(self):
        with self.lock:
            by_kind, by_path, by_status = {}, {}, {}
            for e in self.log:
                k = "%s %s" % (e["method"], e["kind"])
                by_kind[k] = by_kind.get(k, 0) + 1
                p = "%s %s" % (e["method"], e["path"])
                by_path[p] = by_path.get(p, 0) + 1
                s = "%s %s %s" % (e["method"], e["kind"], e["status"])
                by_status[s] = by_status.get(s, 0) + 1
            return {"total": len(self.log), "started": self.started, "in_flight": self.in_flight,
                    "held": self.held,
                    "by_kind": by_kind, "by_status": by_status, "by_path": by_path}

    # ratelimit: budget per source (client IP, or user name for credentialed tokens)
    def rl_take(self, rl, source, consume):
        limit = rl.get("limit", 100)
        with self.lock:
            if source not in self.budgets:
                self.budgets[source] = rl.get("remaining", limit)
            rem = self.budgets[source]
            if consume:
                if rem <= 0:
                    return limit, 0, False
                rem -= 1
                self.budgets[source] = rem
            return limit, rem, True

    def rl_peek(self, rl, source):
        with self.lock:
            return self.budgets.get(source, rl.get("remaining", rl.get("limit", 100)))


# ---- HTTP ----------------------------------------------------------------------------


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeupstream/1"
    sys_version = ""
    timeout = 300

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            BaseHTTPRequestHandler.log_message(self, fmt, *a)

    def version_string(self):
        return self.server_version

    # every method goes through dispatch
    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # ---- plumbing

    def dispatch(self):
        st = self.server.state
        self.st = st
        self.listener = self.server.listener
        u = urllib.parse.urlsplit(self.path)
        self.upath = u.path
        self.query = urllib.parse.parse_qs(u.query)
        self.sent = 0
        self.status = 0
        self.outcome = "ok"
        self.rule_desc = None
        self.outcome_extra = None
        self.body_len = 0
        self.auth_hdr = self.headers.get("Authorization")
        body = b""
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            body = self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
        if self.listener == "main" and self.upath.startswith("/_fake/"):
            self.control(body)
            return
        req = ReqInfo(self.listener, self.command, self.upath, self.query)
        with st.lock:
            st.in_flight += 1
            st.started += 1
        t0 = time.time()
        try:
            try:
                if self.listener == "main":
                    self.handle_main(req)
                elif self.listener == "token":
                    self.handle_token(req)
                else:
                    self.handle_redirect(req)
            except ClientGone:
                self.outcome = "client_gone"
                self.close_connection = True
            except Exception as e:  # a bug in the fake: answer 500, keep serving
                log_err("error on %s %s: %r" % (self.command, self.path, e))
                import traceback
                traceback.print_exc()
                if self.status == 0:
                    try:
                        self.reply_simple(500, "unknown")
                    except Exception:
                        pass
                self.outcome = "fake_error"
                self.close_connection = True
        finally:
            with st.lock:
                st.in_flight -= 1
            entry = {
                "ts": round(t0, 3), "ms": int((time.time() - t0) * 1000),
                "listener": self.listener, "method": self.command, "path": self.upath,
                "query": urllib.parse.urlsplit(self.path).query,
                "kind": req.kind or "other", "name": req.name, "ref": req.ref,
                "status": self.status, "bytes": self.sent, "length": self.body_len,
                "auth": self.auth_hdr is not None,
                "auth_scheme": self.auth_hdr.split(" ", 1)[0] if self.auth_hdr else None,
                "accept": ", ".join(self.headers.get_all("Accept") or []) or None,
                "range": self.headers.get("Range"),
                "rule": self.rule_desc, "outcome": self.outcome, "note": self.outcome_extra,
                "client": "%s:%s" % self.client_address[:2],
                "ua": self.headers.get("User-Agent"),
            }
            st.record(entry)

    def write(self, data):
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()
        self.sent += len(data)

    def start(self, status, headers, length):
        """Send the status line and headers; length None: a chunked body."""
        self.status = status
        self.body_len = length
        try:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if length is None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def sleep(self, seconds):
        """Sleep up to SECONDS; True if the server is stopping or the client went away
        (then the connection should be dropped)."""
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return False
            if STOP.is_set():
                return True
            try:
                r, _, _ = select.select([self.connection], [], [], min(left, 0.2))
                if r:
                    peek = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    if not peek:
                        self.outcome_extra = "client_closed"
                        return True
                    STOP.wait(min(left, 0.05))  # a pipelined request: keep waiting
            except BlockingIOError:
                pass
            except OSError:
                self.outcome_extra = "client_closed"
                return True

    def hold(self, reply):
        """Reply key "hold": wait for POST /_fake/release (at most 60 s, or
        "hold" seconds when it is a number). True if the server is stopping or
        the client went away (then the connection should be dropped)."""
        st = self.st
        limit = 60.0 if reply["hold"] is True else float(reply["hold"])
        with st.lock:
            gen = st.release_gen
            st.held += 1
        try:
            end = time.time() + limit
            while time.time() < end:
                with st.lock:
                    if st.release_gen != gen:
                        return False
                if self.sleep(0.05):
                    return True
            return False
        finally:
            with st.lock:
                st.held -= 1

    def held_reply(self, reply):
        """Apply hold and delay_ms of a rule's reply; True: drop the connection."""
        if not isinstance(reply, dict):
            return False
        if reply.get("hold") and self.hold(reply):
            return True
        if reply.get("delay_ms") and self.sleep(reply["delay_ms"] / 1000.0):
            return True
        return False

    def rst(self):
        """Close the connection with a TCP RST (SO_LINGER 0)."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def common_headers(self):
        h = []
        if self.listener == "main":
            h.append(("Docker-Distribution-API-Version", "registry/2.0"))
        return h

    def reply_simple(self, status, body="", headers=(), content_type=None, head=None):
        """A complete reply with a small body (named bodies allowed)."""
        if isinstance(body, (dict, list)):
            data = compact(body)
        else:
            data = NAMED_BODIES.get(body, body).encode() if isinstance(body, str) else body
        hs = self.common_headers() + list(headers)
        if data and not any(k.lower() == "content-type" for k, _ in hs):
            ct = content_type or ("text/html" if data.lstrip().startswith(b"<") else "application/json")
            hs.append(("Content-Type", ct))
        self.start(status, hs, len(data))
        if head is None:
            head = self.command == "HEAD"
        if not head:
            self.write(data)

    # ---- main listener

    def parse_main(self, req):
        p = self.upath
        if p in ("/v2", "/v2/"):
            req.kind = "base"
            return
        if p == "/v2/_catalog":
            req.kind = "catalog"
            return
        m = re.fullmatch(r"/v2/(.+)/blobs/uploads(/.*)?", p)
        if m:
            req.kind, req.name = "upload", m.group(1)
            return
        m = re.fullmatch(r"/v2/(.+)/(manifests|blobs|tags|referrers)/([^/]+)", p)
        if m:
            req.name, k, req.ref = m.group(1), m.group(2), m.group(3)
            req.kind = {"manifests": "manifest", "blobs": "blob", "tags": "tags", "referrers": "referrers"}[k]
            if req.kind == "tags" and req.ref != "list":
                req.kind = "other"
            return
        req.kind = "other"

    def challenge(self, scen, req):
        a = scen.auth
        if a.get("type", "bearer") == "basic":
            return 'Basic realm="%s"' % a.get("realm", "fake")
        tport = self.st.ports.get("token")
        s = 'Bearer realm="http://%s:%d/token",service="%s"' % (
            self.st.args.token_host, tport, a.get("service", "fake"))
        if req.name and req.kind not in ("base", "catalog"):
            s += ',scope="repository:%s:pull"' % req.name
        return s

    def check_auth(self, scen, req):
        """None if the request may proceed, else the source id for ratelimits is returned in a tuple."""
        a = scen.auth
        if not a:
            return True, None
        hdr = self.auth_hdr or ""
        if a.get("type", "bearer") == "basic":
            if hdr.startswith("Basic ") and basic_ok(hdr, a):
                return True, a.get("user")
            return False, None
        if hdr.startswith("Bearer "):
            tok = hdr[7:].strip()
            with self.st.lock:
                t = self.st.tokens.get(tok)
            if t and t[0] > time.time():
                if req.kind in ("base",) or req.name is None or req.name in t[1] or "*" in t[1]:
                    return True, t[2]
                return "insufficient_scope", None
        return False, None

    def handle_main(self, req):
        st = self.st
        scen = st.scenario
        self.parse_main(req)
        with st.lock:
            repo = st.repos.get(req.name) if req.name else None
        content = None  # (media type or None, Blob-like, digest)
        if repo is not None and req.kind == "manifest":
            d = repo.tags.get(req.ref, req.ref)
            if d in repo.manifests:
                mt, raw = repo.manifests[d]
                content = (mt, Blob(d, data=raw), d)
        elif repo is not None and req.kind == "blob":
            b = repo.blobs.get(req.ref)
            if b is not None:
                content = (None, b, b.digest)
        if content is not None:
            req.size = content[1].size

        ok, source = self.check_auth(scen, req)
        if ok is not True:
            self.reply_simple(401, err_body("UNAUTHORIZED", "authentication required",
                                            [{"Type": "repository", "Name": req.name, "Action": "pull"}]
                                            if req.name else None),
                              headers=[("WWW-Authenticate", self.challenge(scen, req) +
                                        (',error="insufficient_scope"' if ok == "insufficient_scope" else ""))])
            return
        if source is None:
            source = scen.ratelimit.get("source", self.client_address[0]) if scen.ratelimit else None

        reply = self.select_rule(scen, req)
        if self.held_reply(reply):
            self.rst()
            self.outcome = "stopped"
            return
        if reply is not None and reply != "pass" and reply.get("drop"):
            self.rst()
            self.outcome = "dropped"
            return

        rl_headers = []
        rl = scen.ratelimit
        if rl and req.kind == "manifest" and (reply is None or reply == "pass" or reply.get("ratelimit_headers", True)):
            window = rl.get("window", 21600)
            consume = (rl.get("decrement", False) and self.command == "GET" and content is not None
                       and (reply is None or reply == "pass" or "status" not in reply))
            limit, rem, allowed = st.rl_take(rl, source, consume)
            rl_headers = [("ratelimit-limit", "%d;w=%d" % (limit, window)),
                          ("ratelimit-remaining", "%d;w=%d" % (rem, window)),
                          ("docker-ratelimit-source", str(rl.get("source", source)))]
            if not allowed:
                self.rule_desc = "ratelimit exhausted"
                self.reply_simple(429, DOCKERHUB_429, headers=rl_headers)
                return

        if reply is not None and reply != "pass" and "status" in reply:
            status = reply["status"]
            body = reply.get("body", DEFAULT_ERROR_BODY.get(status, "empty") if status >= 400 else "empty")
            hs = rl_headers + list((reply.get("headers") or {}).items())
            self.reply_simple(status, body, headers=hs, content_type=reply.get("content_type"))
            return

        if req.kind == "base":
            self.reply_simple(200, "{}")
            return
        if req.kind == "catalog":
            with st.lock:
                names = sorted(st.repos)
            self.reply_simple(200, {"repositories": names})
            return
        if req.kind == "tags":
            if repo is None:
                self.reply_simple(404, "name_unknown")
            else:
                tags = sorted(repo.tags)
                page = st.args.tags_page
                if page:  # paged like ghcr.io: at most --tags-page tags, Link to the rest
                    last = self.query.get("last", [""])[0]
                    n = min(int(self.query.get("n", [page])[0] or page), page)
                    rest = [t for t in tags if t > last]
                    tags, more = rest[:n], len(rest) > n
                    hs = [("Link", f'</v2/{req.name}/tags/list?n={n}&last={tags[-1]}>; rel="next"')] if more else []
                    self.reply_simple(200, {"name": req.name, "tags": tags}, headers=hs)
                else:
                    self.reply_simple(200, {"name": req.name, "tags": tags})
            return
        if req.kind in ("upload", "referrers") or self.command not in ("GET", "HEAD"):
            if self.command not in ("GET", "HEAD"):
                self.reply_simple(405, err_body("UNSUPPORTED", "the fake upstream is read-only"))
            else:
                self.reply_simple(404, err_body("UNSUPPORTED", "not implemented by the fake upstream"))
            return
        if req.kind == "other":
            self.reply_simple(404, err_body("NOT_FOUND", "no such endpoint"), content_type="application/json")
            return
        if reply is not None and reply != "pass" and reply.get("redirect_loop"):
            # a redirect to the same path, forever (a new query each time)
            n = int(self.query.get("loop", ["0"])[0]) + 1
            self.reply_simple(302, "", headers=[("Location", "%s?loop=%d" % (self.upath, n))])
            return
        if reply is not None and reply != "pass" and "manifest_body" in reply and req.kind == "manifest":
            # these bytes instead of the manifest, with their own digest (HEAD too)
            raw = reply["manifest_body"].encode()
            md = sha256_digest(raw)
            mt = content[0] if content is not None and content[0] else MT_OCI_MANIFEST
            hs = rl_headers + [("Content-Type", mt), ("Docker-Content-Digest", md), ("ETag", '"%s"' % md)]
            self.serve_bytes(Blob(md, data=raw), hs, "pass", ranges=False)
            return
        if repo is None:
            self.reply_simple(404, "name_unknown", headers=rl_headers)
            return
        if content is None:
            self.reply_simple(404, "manifest_unknown" if req.kind == "manifest" else "blob_unknown",
                              headers=rl_headers)
            return

        mt, blob, digest = content
        if req.kind == "manifest":
            if not self.accept_ok(scen, mt):
                self.reply_simple(404, err_body("MANIFEST_UNKNOWN",
                                                "manifest of type %s is not in the Accept header" % mt),
                                  headers=rl_headers)
                return
            hs = rl_headers + [("Content-Type", mt), ("Docker-Content-Digest", digest), ("ETag", '"%s"' % digest)]
            self.serve_bytes(blob, hs, reply, ranges=False)
            return
        # blob
        red = scen.redirect
        if red and (self.command == "GET" or red.get("head", False)):
            rport = st.ports.get("redirect")
            sig = hmac.new(st.sig_key, digest.encode(), hashlib.sha256).hexdigest()[:32]
            loc = "http://%s:%d/blob/%s?repo=%s&sig=%s" % (st.args.redirect_host, rport, digest,
                                                           urllib.parse.quote(req.name, safe=""), sig)
            self.reply_simple(red.get("status", 307), "", headers=[("Location", loc)])
            return
        hs = [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest),
              ("ETag", '"%s"' % digest), ("Accept-Ranges", "bytes"),
              ("Cache-Control", "max-age=31536000")]
        self.serve_bytes(blob, hs, reply, ranges=True)

    def accept_ok(self, scen, mt):
        acc = self.headers.get_all("Accept") or []
        if not acc:
            return scen.strict_accept != "always"
        if scen.strict_accept == "off":
            return True
        types = {a.split(";")[0].strip().lower() for h in acc for a in h.split(",")}
        return mt in types or "*/*" in types

    def select_rule(self, scen, req):
        with self.st.lock:
            for rule in scen.rules:
                if rule.matches(req):
                    reply, n = rule.pick(req)
                    if reply is not None:
                        self.rule_desc = "%s #%d: %s" % (rule.desc, n, describe_reply(reply))
                        return reply
        return None

    def serve_bytes(self, blob, headers, reply, ranges):
        """Send a blob or manifest, applying the reply's body faults."""
        size = blob.size
        start, length, status = 0, size, 200
        rng = self.headers.get("Range") if ranges else None
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            ok = False
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    a = int(m.group(1))
                    b = int(m.group(2)) if m.group(2) else size - 1
                else:
                    a = max(0, size - int(m.group(2)))
                    b = size - 1
                b = min(b, size - 1)
                if a <= b:
                    ok = True
                    start, length, status = a, b - a + 1, 206
                    headers = headers + [("Content-Range", "bytes %d-%d/%d" % (a, b, size))]
            if not ok:
                self.reply_simple(416, err_body("RANGE_INVALID", "invalid range"),
                                  headers=[("Content-Range", "bytes */%d" % size)])
                return
        faults = reply if isinstance(reply, dict) else {}
        if faults.get("endless") and self.command == "GET":
            self.serve_endless(blob, headers, status, faults["endless"])
            return
        if "length_delta" in faults:  # a Content-Length that is not the content's
            length = max(0, length + int(faults["length_delta"]))
        self.start(status, headers, length)
        if self.command == "HEAD":
            return
        cut = None
        mode = None
        for key in ("stall_after_bytes", "reset_after_bytes", "close_after_bytes"):
            if key in faults:
                n = int(faults[key])
                cut = n if n < length else length // 2  # always short of Content-Length
                mode = key
                break
        wrong = faults.get("wrong_bytes")
        rate = faults.get("rate")
        limit = length if cut is None else cut
        if "length_delta" in faults and cut is None:  # send what the Content-Length says
            pad = length - min(length, blob.size - start)
            limit = length - pad
        else:
            pad = 0
        flip = bytes(range(255, -1, -1))
        t0 = time.time()
        pos = 0
        for chunk in blob.read_range(start, length):
            if pos >= limit:
                break
            chunk = chunk[:limit - pos]
            if wrong is True or wrong == "all":
                chunk = chunk.translate(flip)
            elif wrong == "last" and start + pos + len(chunk) == size:
                chunk = chunk[:-1] + bytes([chunk[-1] ^ 0xFF])
            for i in range(0, len(chunk), 16384 if rate else len(chunk) or 1):
                piece = chunk[i:i + (16384 if rate else len(chunk))]
                self.write(piece)
                if rate:
                    ahead = (pos + i + len(piece)) / float(rate) - (time.time() - t0)
                    if ahead > 0 and self.sleep(ahead):
                        self.rst()
                        self.outcome = "stopped"
                        return
            pos += len(chunk)
        if pad:
            self.write(b"\0" * pad)
        if mode is None and faults.get("overlong_bytes"):
            # more bytes than the Content-Length, a moment later (so they do not
            # arrive with the body), then close: left on a kept-alive connection,
            # they are read as the start of the next response
            self.wfile.flush()
            if self.sleep(faults.get("overlong_delay_ms", 20) / 1000.0):
                self.rst()
                return
            extra = int(faults["overlong_bytes"])
            junk = (b"garbage past Content-Length " * (extra // 28 + 1))[:extra]
            try:
                self.wfile.write(junk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                raise ClientGone()
            self.outcome = "overlong"
            self.outcome_extra = "%d bytes past Content-Length" % extra
            self.close_connection = True
            return
        if mode is None:
            return
        if mode == "reset_after_bytes":
            self.outcome = "reset"
            self.rst()
        elif mode == "close_after_bytes":
            self.outcome = "closed"
            self.close_connection = True
        else:
            self.outcome = "stalled"
            secs = faults.get("stall_seconds", 30)
            # "release": until POST /_fake/release (at most 60 s), as "hold" waits
            stopping = self.hold({"hold": True}) if secs == "release" else self.sleep(float(secs))
            then = faults.get("stall_then", "close")
            if then == "finish" and not stopping:
                self.outcome = "stalled_then_finished"
                for chunk in blob.read_range(start + limit, length - limit):
                    self.write(chunk.translate(flip) if wrong is True else chunk)
            elif then == "reset" or stopping:
                self.rst()
            else:
                self.close_connection = True

    def serve_endless(self, blob, headers, status, total):
        """A chunked body without Content-Length: the content, then its bytes
        again and again; total bytes in all (True: until the client goes away
        or the fake stops)."""
        self.start(status, headers, None)
        self.outcome = "endless"
        data = b"".join(blob.read_range(0, blob.size)) or b"\0"
        limit = None if total is True else int(total)
        pos = 0
        while limit is None or self.sent < limit:
            if STOP.is_set():
                self.rst()
                self.outcome = "stopped"
                return
            c = data[pos % len(data):pos % len(data) + 65536]
            if limit is not None:
                c = c[:limit - self.sent]
            try:
                self.wfile.write(b"%x\r\n" % len(c) + c + b"\r\n")
            except (BrokenPipeError, ConnectionResetError, OSError):
                raise ClientGone()
            self.sent += len(c)  # body bytes, not the chunk framing
            pos += len(c)
        try:
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    # ---- token listener

    def handle_token(self, req):
        st = self.st
        scen = st.scenario
        req.kind = "token" if self.upath == "/token" else "other"
        scopes = []
        for s in self.query.get("scope", []):
            scopes.extend(s.split(" "))
        names = set()
        for s in scopes:
            parts = s.split(":")
            if len(parts) >= 3 and parts[0] == "repository" and "pull" in parts[-1].split(","):
                names.add(":".join(parts[1:-1]))
        req.name = ",".join(sorted(names)) or None
        reply = self.select_rule(scen, req)
        if self.held_reply(reply):
            self.rst()
            self.outcome = "stopped"
            return
        if isinstance(reply, dict) and reply.get("drop"):
            self.rst()
            self.outcome = "dropped"
            return
        if isinstance(reply, dict) and "status" in reply:
            st_ = reply["status"]
            self.reply_simple(st_, reply.get("body", DEFAULT_ERROR_BODY.get(st_, "empty") if st_ >= 400 else "empty"),
                              headers=list((reply.get("headers") or {}).items()))
            return
        a = scen.auth
        if req.kind != "token" or not a or a.get("type", "bearer") != "bearer":
            self.reply_simple(404, err_body("NOT_FOUND", "no token service here"))
            return
        hdr = self.auth_hdr or ""
        source = None
        if a.get("user") is not None:
            if hdr.startswith("Basic "):
                if not basic_ok(hdr, a):
                    self.reply_simple(401, {"details": "incorrect username or password"},
                                      headers=[("WWW-Authenticate", 'Basic realm="fake token"')])
                    return
                source = a["user"]
            elif not a.get("anonymous", False):
                self.reply_simple(401, {"details": "credentials required"},
                                  headers=[("WWW-Authenticate", 'Basic realm="fake token"')])
                return
        if self.query.get("service", [a.get("service", "fake")])[0] != a.get("service", "fake"):
            self.reply_simple(400, {"details": "unknown service"})
            return
        ttl = int(a.get("expires_in", 300))
        tok = "fake." + base64.urlsafe_b64encode(os.urandom(18)).decode()
        with st.lock:
            st.tokens[tok] = (time.time() + ttl, names, source or self.client_address[0])
        self.reply_simple(200, {"token": tok, "access_token": tok, "expires_in": ttl,
                                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    # ---- redirect listener (the "blob host")

    def handle_redirect(self, req):
        st = self.st
        scen = st.scenario
        m = re.fullmatch(r"/blob/(sha256:[0-9a-f]{64})", self.upath)
        if not m:
            req.kind = "other"
            self.reply_simple(404, "not found\n", content_type="text/plain")
            return
        req.kind, req.ref = "blob", m.group(1)
        req.name = self.query.get("repo", [None])[0]
        with st.lock:
            repo = st.repos.get(req.name) if req.name else None
        blob = repo.blobs.get(req.ref) if repo else None
        if blob is not None:
            req.size = blob.size
        red = scen.redirect or {}
        if self.auth_hdr is not None and red.get("reject_authorization", True):
            # S3 and CDNs refuse a signed URL that also carries Authorization
            self.reply_simple(400, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                                   "allowed</Message></Error>", content_type="application/xml")
            return
        sig = hmac.new(st.sig_key, req.ref.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(self.query.get("sig", [""])[0], sig):
            self.reply_simple(403, "<Error><Code>AccessDenied</Code></Error>", content_type="application/xml")
            return
        if blob is None:
            self.reply_simple(404, "<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
            return
        reply = self.select_rule(scen, req)
        if self.held_reply(reply):
            self.rst()
            return
        if isinstance(reply, dict) and reply.get("drop"):
            self.rst()
            self.outcome = "dropped"
            return
        if isinstance(reply, dict) and "status" in reply:
            st_ = reply["status"]
            self.reply_simple(st_, reply.get("body", "empty"), headers=list((reply.get("headers") or {}).items()))
            return
        hs = [("Content-Type", "application/octet-stream"), ("ETag", '"%s"' % req.ref[7:]),
              ("Accept-Ranges", "bytes")]
        self.serve_bytes(blob, hs, reply, ranges=True)

    # ---- control endpoints (main listener, /_fake/...; not logged, no auth)

    def control(self, body):
        st = self.st
        p = self.upath
        self.status = 200
        if p == "/_fake/log" and self.command == "GET":
            since = int(self.query.get("since", ["0"])[0])
            with st.lock:
                lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in st.log if e["seq"] > since)
            self.reply_simple(200, lines, content_type="application/x-ndjson")
        elif p == "/_fake/reset-log" and self.command == "POST":
            st.reset_log()
            self.reply_simple(200, {"ok": True})
        elif p == "/_fake/stats" and self.command == "GET":
            self.reply_simple(200, st.stats())
        elif p == "/_fake/content" and self.command == "GET":
            with st.lock:
                self.reply_simple(200, {n: r.summary() for n, r in st.repos.items()})
        elif p == "/_fake/scenario" and self.command == "GET":
            self.reply_simple(200, {"source": st.scenario.source, "doc": st.scenario.doc})
        elif p == "/_fake/scenario" and self.command == "POST":
            try:
                if self.query.get("name"):
                    doc, src = load_scenario_file(self.query["name"][0], st.args.scenario_dir)
                else:
                    doc, src = json.loads(body or b"{}"), "<posted>"
                scen = Scenario(doc, src)
                check_ports(scen, st.ports)
                st.set_scenario(scen)
            except (SystemExit, ValueError, KeyError, OSError) as e:
                self.reply_simple(400, {"error": str(e)})
                return
            self.reply_simple(200, {"ok": True, "source": src})
        elif p == "/_fake/ratelimit":
            rl = st.scenario.ratelimit
            if not rl:
                self.reply_simple(404, {"error": "the scenario has no ratelimit"})
                return
            if self.command == "POST":
                doc = json.loads(body or b"{}")
                src = doc.get("source", rl.get("source", self.client_address[0]))
                with st.lock:
                    st.budgets[src] = int(doc["remaining"])
            with st.lock:
                self.reply_simple(200, {"limit": rl.get("limit", 100), "budgets": dict(st.budgets)})
        elif p == "/_fake/release" and self.command == "POST":
            with st.lock:
                st.release_gen += 1
                n = st.held
            self.reply_simple(200, {"ok": True, "released": n})
        elif p == "/_fake/reset" and self.command == "POST":
            st.set_scenario(st.scenario)
            st.reset_log()
            self.reply_simple(200, {"ok": True})
        else:
            self.reply_simple(404, {"error": "unknown control endpoint",
                                    "endpoints": ["GET /_fake/log[?since=SEQ]", "POST /_fake/reset-log",
                                                  "GET /_fake/stats", "GET /_fake/content",
                                                  "GET|POST /_fake/scenario[?name=NAME]",
                                                  "GET|POST /_fake/ratelimit", "POST /_fake/release",
                                                  "POST /_fake/reset"]})


def basic_ok(hdr, a):
    try:
        user, _, pw = base64.b64decode(hdr.split(" ", 1)[1].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, str(a.get("user", ""))) and hmac.compare_digest(pw, str(a.get("password", "")))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, listener, state):
        self.listener = listener
        self.state = state
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def check_ports(scen, ports):
    if scen.auth and scen.auth.get("type", "bearer") == "bearer" and not ports.get("token"):
        raise SystemExit("fakeupstream: scenario %s uses token auth: give --token-port" % scen.source)
    if scen.redirect and not ports.get("redirect"):
        raise SystemExit("fakeupstream: scenario %s redirects blobs: give --redirect-port" % scen.source)


def loopback(host):
    if not host.startswith("127."):
        raise SystemExit("fakeupstream: refusing to bind %s: loopback addresses only" % host)
    return host


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="fault-injecting fake upstream registry (tests only)")
    ap.add_argument("--port", type=int, required=True, help="registry port (0: any free port)")
    ap.add_argument("--token-port", type=int, help="port of the token realm (/token)")
    ap.add_argument("--redirect-port", type=int, help="port of the blob host that redirects point to")
    ap.add_argument("--scenario", default="pass", help="scenario file, or a name in --scenario-dir")
    ap.add_argument("--scenario-dir", default=os.path.join(here, "scenarios"))
    ap.add_argument("--layout", action="append", default=[], help="OCI layout served as library/test")
    ap.add_argument("--repo", action="append", default=[], metavar="NAME=LAYOUT",
                    help="serve the tagged images of an OCI layout as repository NAME (repeatable)")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--ready-file", help="write {\"port\":...} here once listening")
    ap.add_argument("--host", default="127.0.0.1", type=loopback)
    ap.add_argument("--token-host", default="127.0.0.1", type=loopback)
    ap.add_argument("--redirect-host", default="127.0.0.1", type=loopback)
    ap.add_argument("--tags-page", type=int, default=0, metavar="N",
                    help="tag lists in pages of at most N tags, linked with Link rel=next")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    st = State(args)
    for l in args.layout:
        st.cli_repos.append(("library/test", l))
    for r in args.repo:
        name, sep, layout = r.partition("=")
        if not sep or not name or not layout:
            raise SystemExit("fakeupstream: --repo wants NAME=LAYOUT_DIR, not %r" % r)
        st.cli_repos.append((name, layout))

    doc, src = load_scenario_file(args.scenario, args.scenario_dir)
    scen = Scenario(doc, src)

    servers = []
    main_srv = Server((args.host, args.port), "main", st)
    servers.append(main_srv)
    st.ports["main"] = main_srv.server_address[1]
    if args.token_port is not None:
        s = Server((args.token_host, args.token_port), "token", st)
        servers.append(s)
        st.ports["token"] = s.server_address[1]
    if args.redirect_port is not None:
        s = Server((args.redirect_host, args.redirect_port), "redirect", st)
        servers.append(s)
        st.ports["redirect"] = s.server_address[1]
    check_ports(scen, st.ports)
    st.set_scenario(scen)

    done = threading.Event()

    def on_signal(signum, frame):
        STOP.set()
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = []
    for s in servers:
        t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        t.start()
        threads.append(t)
    info = {"pid": os.getpid(), "port": st.ports["main"], "token_port": st.ports.get("token"),
            "redirect_port": st.ports.get("redirect"), "scenario": src}
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.rename(tmp, args.ready_file)
    sys.stdout.write("ready %s\n" % json.dumps(info))
    sys.stdout.flush()
    while not done.wait(1.0):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    if st.log_file:
        st.log_file.close()
    sys.stdout.write("stopped\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
