#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""k8s_check.py - check what `kubectl kustomize` rendered for deploy/kubernetes
(tests/e2e/test_kubernetes.sh): the fields that matter, not the whole text.

    k8s_check.py KIND RENDERED.yaml IMAGE OUTDIR

KIND: base (single-replica StatefulSet), scale-out (Deployment on S3 +
PostgreSQL) or node (the containerd DaemonSet). IMAGE: the image every
container must run. Writes each ConfigMap's config.yaml to OUTDIR/config.yaml
(for `serve --check-config`) and, for node, the container's command line to
OUTDIR/node-command (one argument a line). Prints what it found; exit 1 with
every problem listed.
"""
import os
import sys

import yaml

problems = []


def bad(msg):
    problems.append(msg)


def get(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_container_security(where, c, pod, root_ok=False):
    sc = c.get("securityContext") or {}
    psc = get(pod, "securityContext", default={})
    if sc.get("readOnlyRootFilesystem") is not True:
        bad(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        bad(f"{where}: allowPrivilegeEscalation is not false")
    if get(sc, "capabilities", "drop") != ["ALL"]:
        bad(f"{where}: capabilities.drop is {get(sc, 'capabilities', 'drop')}, not [ALL]")
    if get(sc, "capabilities", "add"):
        bad(f"{where}: adds capabilities {get(sc, 'capabilities', 'add')}")
    if sc.get("privileged"):
        bad(f"{where}: privileged")
    seccomp = get(sc, "seccompProfile", "type") or get(psc, "seccompProfile", "type")
    if seccomp != "RuntimeDefault":
        bad(f"{where}: seccompProfile {seccomp}, not RuntimeDefault")
    if not root_ok:
        nonroot = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if nonroot is not True:
            bad(f"{where}: runAsNonRoot is not true")
        if uid in (None, 0):
            bad(f"{where}: runAsUser {uid} (the image's user is 65532)")
        if psc.get("fsGroup") != uid:
            bad(f"{where}: fsGroup {psc.get('fsGroup')} is not the user's group {uid}")


def mounts_of(c, pod, claim_templates=()):
    """mountPath -> volume (dict), every mount's volume checked to exist."""
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    for t in claim_templates:
        vols[t["metadata"]["name"]] = {"name": t["metadata"]["name"], "claimTemplate": t}
    out = {}
    for m in c.get("volumeMounts") or []:
        v = vols.get(m["name"])
        if v is None:
            bad(f"container {c['name']}: mount {m['mountPath']} names no volume {m['name']}")
            continue
        out[m["mountPath"]] = dict(v, readOnly=m.get("readOnly", False))
    return out


def check_registry_pod(where, c, pod, image):
    if c.get("image") != image:
        bad(f"{where}: image {c.get('image')}, want {image}")
    if c.get("command"):
        bad(f"{where}: command {c['command']} replaces the image's entrypoint")
    ports = {p.get("name"): p for p in c.get("ports") or []}
    if get(ports, "http", "containerPort") != 5000:
        bad(f"{where}: no port named http on 5000: {c.get('ports')}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = get(c, probe, "httpGet") or {}
        if hg.get("path") != path or hg.get("port") not in ("http", 5000):
            bad(f"{where}: {probe} is {hg}, want GET {path} on the http port")
    check_container_security(where, c, pod)


def configmap_config(objs, pod, c, outdir, claim_templates=()):
    """The config.yaml the container reads at /etc/pullcache/config.yaml."""
    m = mounts_of(c, pod, claim_templates).get("/etc/pullcache")
    if not m or "configMap" not in m:
        bad("no ConfigMap mounted at /etc/pullcache")
        return {}
    if not m["readOnly"]:
        bad("the ConfigMap at /etc/pullcache is not mounted read-only")
    name = m["configMap"]["name"]
    cms = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    if len(cms) != 1:
        bad(f"the mounted ConfigMap {name} is not rendered")
        return {}
    text = get(cms[0], "data", "config.yaml")
    if not text:
        bad(f"ConfigMap {name} has no config.yaml")
        return {}
    with open(os.path.join(outdir, "config.yaml"), "w") as f:
        f.write(text)
    return yaml.safe_load(text) or {}


def check_common(objs, pod_labels):
    svc = [o for o in objs if o["kind"] == "Service"]
    if len(svc) != 1:
        bad(f"{len(svc)} Services, want 1")
    else:
        s = svc[0]
        if not matches(get(s, "spec", "selector"), pod_labels):
            bad(f"Service selector {get(s, 'spec', 'selector')} does not select the pods {pod_labels}")
        p = get(s, "spec", "ports", 0) or {}
        if p.get("port") != 5000 or p.get("targetPort") not in ("http", 5000):
            bad(f"Service port {p}, want 5000 -> http")
    pdb = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    if len(pdb) != 1 or not matches(get(pdb[0], "spec", "selector", "matchLabels"), pod_labels):
        bad("no PodDisruptionBudget selecting the pods")
    elif get(pdb[0], "spec", "maxUnavailable") != 1:
        bad("PodDisruptionBudget: maxUnavailable is not 1")
    np = [o for o in objs if o["kind"] == "NetworkPolicy"]
    if len(np) != 1 or not matches(get(np[0], "spec", "podSelector", "matchLabels"), pod_labels):
        bad("no NetworkPolicy selecting the pods")
        return None
    spec = np[0]["spec"]
    if sorted(spec.get("policyTypes") or []) != ["Egress", "Ingress"]:
        bad(f"NetworkPolicy policyTypes {spec.get('policyTypes')}")
    in_ports = [p.get("port") for r in spec.get("ingress") or [] for p in r.get("ports") or []]
    if in_ports != [5000]:
        bad(f"NetworkPolicy ingress ports {in_ports}, want [5000]")
    return spec


def egress_ports(spec):
    return {p.get("port") for r in (spec or {}).get("egress") or [] for p in r.get("ports") or []}


def workload(objs, kind):
    w = [o for o in objs if o["kind"] == kind]
    if len(w) != 1:
        bad(f"{len(w)} {kind}s, want 1")
        return None, None, None
    pod = get(w[0], "spec", "template", "spec")
    cs = pod.get("containers") or []
    if len(cs) != 1:
        bad(f"{kind}: {len(cs)} containers, want 1")
    if pod.get("initContainers"):
        bad(f"{kind}: init containers")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        bad(f"{kind}: host namespaces")
    if pod.get("automountServiceAccountToken") is not False:
        bad(f"{kind}: the service account token is mounted (it needs no API access)")
    labels = get(w[0], "spec", "template", "metadata", "labels") or {}
    if not matches(get(w[0], "spec", "selector", "matchLabels"), labels):
        bad(f"{kind}: its selector does not match its pods' labels")
    return w[0], pod, cs[0] if cs else None


def check_base(objs, image, outdir):
    kinds = sorted(o["kind"] for o in objs)
    want = sorted(["ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"])
    if kinds != want:
        bad(f"kinds {kinds}, want {want}")
    ss, pod, c = workload(objs, "StatefulSet")
    if not c:
        return
    labels = get(ss, "spec", "template", "metadata", "labels")
    if get(ss, "spec", "replicas") != 1:
        bad(f"StatefulSet replicas {get(ss, 'spec', 'replicas')}, want 1")
    check_registry_pod("StatefulSet", c, pod, image)
    tmpl = get(ss, "spec", "volumeClaimTemplates") or []
    m = mounts_of(c, pod, tmpl)
    data = m.get("/data")
    if not data or "claimTemplate" not in data:
        bad(f"/data is not a volumeClaimTemplate's PVC: {data}")
    elif not get(data, "claimTemplate", "spec", "resources", "requests", "storage"):
        bad("the data PVC requests no storage size")
    for path, v in m.items():
        if "hostPath" in v:
            bad(f"StatefulSet: hostPath volume at {path}")
    cfg = configmap_config(objs, pod, c, outdir, tmpl)
    if get(cfg, "storage", "data") != "/data":
        bad(f"config.yaml: storage.data is {get(cfg, 'storage', 'data')}, not the PVC at /data")
    if not str(get(cfg, "http", "listen", default="")).endswith(":5000"):
        bad(f"config.yaml: http.listen {get(cfg, 'http', 'listen')} is not port 5000")
    spec = check_common(objs, labels)
    if spec is not None and not {53, 443} <= egress_ports(spec):
        bad(f"NetworkPolicy egress ports {egress_ports(spec)} lack DNS or HTTPS")
    print(f"base: StatefulSet x1, PVC {get(data, 'claimTemplate', 'spec', 'resources', 'requests', 'storage')} "
          f"at /data, image {c.get('image')}, probes, securityContext, config {sorted(cfg)}")


def check_scale_out(objs, image, outdir):
    kinds = sorted(o["kind"] for o in objs)
    want = sorted(["ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy"])
    if kinds != want:
        bad(f"kinds {kinds}, want {want} (a Secret must be referenced, never rendered)")
    dep, pod, c = workload(objs, "Deployment")
    if not c:
        return
    labels = get(dep, "spec", "template", "metadata", "labels")
    if (get(dep, "spec", "replicas") or 0) < 2:
        bad(f"Deployment replicas {get(dep, 'spec', 'replicas')}, want at least 2")
    check_registry_pod("Deployment", c, pod, image)
    m = mounts_of(c, pod)
    if "emptyDir" not in (m.get("/data") or {}):
        bad(f"/data is not an emptyDir: {m.get('/data')}")
    if any("persistentVolumeClaim" in v for v in m.values()):
        bad("the scale-out replicas mount a PVC")
    env = {e["name"]: e for e in c.get("env") or []}
    if get(env, "POD_IP", "valueFrom", "fieldRef", "fieldPath") != "status.podIP":
        bad(f"POD_IP is not the downward API's status.podIP: {env.get('POD_IP')}")
    for e in env.values():
        if "value" in e and any(w in e["name"].upper() for w in ("PASS", "SECRET", "KEY", "CONNINFO")):
            bad(f"env {e['name']} holds a secret value inline")
        if get(e, "valueFrom", "secretKeyRef") is None and "value" in e and "password=" in str(e["value"]):
            bad(f"env {e['name']} holds a password inline")
    args = c.get("args") or []
    if "--advertise" not in args or args[args.index("--advertise") + 1 :][:1] != ["http://$(POD_IP):5000"]:
        bad(f"args {args}: no --advertise http://$(POD_IP):5000")
    cfg = configmap_config(objs, pod, c, outdir)
    if get(cfg, "storage", "blobs", "driver") != "s3" or get(cfg, "storage", "meta", "driver") != "postgres":
        bad("config.yaml: the stores are not s3 + postgres")
    if get(cfg, "storage", "blobs", "access_key") or get(cfg, "storage", "blobs", "secret_key"):
        bad("config.yaml: S3 keys inline")
    # each secret file the config names is in a Secret volume mounted read-only
    secrets = []
    for key, path in (("storage.meta.conninfo_file", get(cfg, "storage", "meta", "conninfo_file")),
                      ("storage.blobs.credentials_file", get(cfg, "storage", "blobs", "credentials_file")),
                      ("cluster.secret_file", get(cfg, "cluster", "secret_file"))):
        if not path:
            bad(f"config.yaml: no {key}")
            continue
        d, f = os.path.split(path)
        v = m.get(d)
        if not v or "secret" not in v:
            bad(f"config.yaml {key} {path}: no Secret mounted at {d}")
            continue
        if not v["readOnly"]:
            bad(f"the Secret at {d} is not mounted read-only")
        items = {i["path"]: i["key"] for i in get(v, "secret", "items") or []}
        if f not in items:
            bad(f"Secret {get(v, 'secret', 'secretName')} at {d} has no item {f}")
        mode = get(v, "secret", "defaultMode")
        if mode is None or mode & 0o007:
            bad(f"Secret {get(v, 'secret', 'secretName')}: mode {mode} is readable by others")
        secrets.append(get(v, "secret", "secretName"))
    if get(cfg, "cluster", "advertise"):
        bad("config.yaml sets cluster.advertise: every replica would claim one URL")
    spec = check_common(objs, labels)
    ports = egress_ports(spec)
    if spec is not None and not {53, 443, 5432, 5000} <= ports:
        bad(f"NetworkPolicy egress ports {sorted(ports)} lack DNS, HTTPS, PostgreSQL or the replicas' 5000")
    print(f"scale-out: Deployment x{get(dep, 'spec', 'replicas')}, emptyDir /data, Secrets {secrets}, "
          f"--advertise from status.podIP, image {c.get('image')}")


def check_node(objs, image, outdir):
    kinds = sorted(o["kind"] for o in objs)
    if kinds != ["DaemonSet"]:
        bad(f"kinds {kinds}, want [DaemonSet]")
    ds, pod, c = workload(objs, "DaemonSet")
    if not c:
        return
    if c.get("image") != image:
        bad(f"DaemonSet: image {c.get('image')}, want {image}")
    check_container_security("DaemonSet", c, pod, root_ok=True)
    if get(ds, "spec", "updateStrategy", "rollingUpdate", "maxSurge") not in (None, 0):
        bad("DaemonSet: a surge pod's files would be removed by the old pod's exit")
    if pod.get("enableServiceLinks") is False:
        bad("DaemonSet: enableServiceLinks false (the mirror is the Service's variables)")
    cmd = (c.get("command") or []) + (c.get("args") or [])
    if cmd[:3] != ["/usr/bin/pullcache", "config", "containerd"]:
        bad(f"DaemonSet command {cmd}: not /usr/bin/pullcache config containerd")
    for flag in ("--watch", "--remove-on-exit", "--mirror", "--output"):
        if flag not in cmd:
            bad(f"DaemonSet command lacks {flag}")
    out = cmd[cmd.index("--output") + 1] if "--output" in cmd[:-1] else None
    m = mounts_of(c, pod)
    v = m.get(out)
    if not v or get(v, "hostPath", "path") != "/etc/containerd/certs.d":
        bad(f"--output {out} is not the host's /etc/containerd/certs.d: {v}")
    elif v["readOnly"]:
        bad("the host's certs.d is mounted read-only")
    for path, vol in m.items():
        if "hostPath" in vol and path != out:
            bad(f"DaemonSet: another hostPath at {path}")
    if get(pod, "tolerations", 0, "operator") != "Exists":
        bad("DaemonSet: does not tolerate every taint (nodes would be left out)")
    with open(os.path.join(outdir, "node-command"), "w") as f:
        f.write("".join(a + "\n" for a in cmd))
    print(f"node: DaemonSet, {' '.join(cmd)}, hostPath /etc/containerd/certs.d at {out}")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    kind, rendered, image, outdir = sys.argv[1:]
    with open(rendered) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    for o in objs:
        if not o.get("apiVersion") or not o.get("kind") or not get(o, "metadata", "name"):
            bad(f"an object without apiVersion, kind or name: {str(o)[:80]}")
    {"base": check_base, "scale-out": check_scale_out, "node": check_node}[kind](objs, image, outdir)
    for p in problems:
        print(f"{kind}: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
