#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""push_many.py - push N small distinct images (a config and LAYERS random
layers of SIZE bytes each, an OCI image manifest, one tag) into a registry
over the OCI distribution API (monolithic blob uploads, manifest PUT), for
bench/capacity.sh. Prints one JSON line: images, blobs, blob_bytes.

usage: push_many.py URL REPO_PREFIX N [--layers L] [--size BYTES] [--repos R]
"""
import argparse
import hashlib
import http.client
import json
import os
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("prefix")
    ap.add_argument("n", type=int)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repos", type=int, default=10)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)

    def req(method, path, body=b"", headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, r.getheader("Location"), data

    def push_blob(repo, data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        st, loc, body = req("POST", "/v2/%s/blobs/uploads/" % repo, headers={"Content-Length": "0"})
        if st != 202:
            sys.exit("POST upload %s: %d %s" % (repo, st, body[:200]))
        loc = urllib.parse.urlsplit(loc)
        path = loc.path + "?" + (loc.query + "&" if loc.query else "") + "digest=" + d
        st, _, body = req("PUT", path, data, {"Content-Type": "application/octet-stream",
                                              "Content-Length": str(len(data))})
        if st != 201:
            sys.exit("PUT blob %s: %d %s" % (repo, st, body[:200]))
        return {"digest": d, "size": len(data)}

    blobs = blob_bytes = 0
    for i in range(a.n):
        repo = "%s%d" % (a.prefix, i % a.repos)
        layers = []
        diff_ids = []
        for _ in range(a.layers):
            data = os.urandom(a.size)
            desc = push_blob(repo, data)
            desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
            layers.append(desc)
            diff_ids.append(desc["digest"])
            blobs += 1
            blob_bytes += len(data)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "created": "2024-01-01T00:00:00Z", "config": {"Cmd": ["/app", str(i)]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                            separators=(",", ":")).encode()
        cdesc = push_blob(repo, config)
        cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
        blobs += 1
        blob_bytes += len(config)
        manifest = json.dumps({"schemaVersion": 2,
                               "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": cdesc, "layers": layers}, separators=(",", ":")).encode()
        st, _, body = req("PUT", "/v2/%s/manifests/v%d" % (repo, i), manifest,
                          {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                           "Content-Length": str(len(manifest))})
        if st != 201:
            sys.exit("PUT manifest %s:v%d: %d %s" % (repo, i, st, body[:200]))
        blobs += 1
        blob_bytes += len(manifest)
    print(json.dumps({"images": a.n, "blobs": blobs, "blob_bytes": blob_bytes}))


if __name__ == "__main__":
    main()
