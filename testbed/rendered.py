"""The service testbed's config, taken only from what the roles render.

    from testbed.rendered import config_from_render
    config = config_from_render("docker-desktop")      # the dict testbed.services.up() takes

Nothing here is written by hand. The roles of `playbooks/up.yml` render their manifests for the
inventory; from those, for every workload the testbed runs natively, this module takes what its
pod would see:

- files: the ConfigMap (or Secret) keys a container mounts, at the path the pod sees them
  (`volumeMounts` + `volumes`, with or without `items` key->path mapping, `subPath` mounts),
  byte for byte;
- environment: the container's `env` and `envFrom`, resolved as the kubelet does (literal values
  with `$(VAR)` references, `secretKeyRef`, `configMapKeyRef`, `fieldRef` of the downward API),
  plus the few variables the kubelet or the image itself set (HOSTNAME; the image's ENV lines
  the rendered scripts rely on, table IMAGE_ENV);
- Secrets: filled exactly as the engine fills them on `invoke up` (datamesh.diff.fill_generated
  over every rendered Secret in playbook order with one shared `known` dict: generated keys get
  random values the first time, or keep the value of `live`, copied keys take the value of the
  Secret they copy);
- ports: the Services in front of each workload (port, targetPort resolved to the container's
  port number, nodePort).

Each section also carries `paths`, the one table per service that says where a path the pod
sees lives in the testbed's run folder (the longest matching prefix wins); testbed/native.py
places files, translates env values and command arguments with it, and refuses a mounted file
that no entry covers, so a new mount is never silently dropped. Everything else a native run does
differently from the pod (bind addresses, data folders, versions) is the service module's, listed
in its docstring under "Differences from the pod".
"""

from __future__ import annotations

import base64
import re
from typing import Any

from datamesh import diff, inventory as inventories, playbook
from datamesh.manifests import NAME, platform

# ------------------------------------------------------------------ translation tables
# pod path -> path under the service's run folder (.testbed/services/<service>/). One table per
# service; an entry that is not a mount of the pod is a path the pod's image provides.

TRINO_PATHS = {
    "/etc/trino": "etc",                      # the trino-config ConfigMap (items: config.properties, catalog/X)
    "/etc/trino-users": "users",              # the trino-users Secret's password.db (security.trino_auth)
    "/etc/trino-tls": "tls",                  # the trino-tls Secret's tls.pem: key and certificate
    "/data/trino": "data",                    # node.data-dir (the image's writable data folder)
}
HIVE_PATHS = {
    "/opt/hive/conf/hive-site.xml": "conf/hive-site.xml",                  # subPath of hive-metastore-config
    "/opt/hadoop/etc/hadoop/core-site.xml": "conf/core-site.xml",          # subPath; on the classpath, as in the pod
    "/opt/datamesh/scripts": "scripts",                                    # the whole ConfigMap (start/init scripts)
    "/opt/datamesh/aux-jars": "aux-jars",                                  # the jars volume the init container fills
    "/opt/hive": "image",                                                  # HIVE_HOME: bin/schematool of the image
    "/entrypoint.sh": "image/entrypoint.sh",                               # the image's entrypoint
}
POSTGRES_PATHS = {
    "/docker-entrypoint-initdb.d": "initdb.d",  # the <instance>-init ConfigMap
    "/var/lib/postgresql/data": "data",         # the data volume (PGDATA is data/pgdata under it)
}
S3_PATHS = {
    "/data": "data",                            # the object store's volume (versitygw's posix folder is in it)
}
POSTGRES_JOB_PATHS = {
    "/opt/datamesh/scripts": "scripts",         # the postgres-readonly-role ConfigMap (readonly-role.sh)
}
S3_JOB_PATHS = {
    "/tmp": "tmp",                              # the bucket Job's emptyDir, its HOME
}
JUPYTERHUB_PATHS = {
    "/usr/local/etc/jupyterhub/jupyterhub_config.py": "etc/jupyterhub_config.py",  # subPath of hub-config
    "/srv/jupyterhub": "srv",                   # the hub-db volume (SQLite database, cookie secret)
}
NGINX_PATHS = {
    "/etc/nginx/conf.d/default.conf": "conf.d/default.conf",  # subPath of dbt-docs-config
    "/usr/share/nginx/placeholder": "placeholder",            # the dbt-docs-placeholder ConfigMap
    "/usr/share/nginx/html": "html",                          # the dbt-docs-site volume seed publishes into
}
DOCS_SYNC_PATHS = {
    "/usr/share/nginx/html": "html",                          # the same site volume, written by the sync container
    "/tmp": "sync-home",                                      # its emptyDir, its HOME
}

# Variables a container gets from its image (Dockerfile ENV) that the rendered files rely on.
IMAGE_ENV = {
    # apache/hive:4.0.1's ENV: start-metastore.sh runs $HIVE_HOME/bin/schematool; the entrypoint reads HIVE_VER
    "hive-metastore": {"HIVE_HOME": "/opt/hive", "HIVE_VER": "4.0.1"},
}


class RenderError(RuntimeError):
    """The rendered manifests do not have what the testbed needs; names the object and field."""


# ------------------------------------------------------------------ render and Secrets


def render(inventory: str = "docker-desktop") -> tuple[inventories.Inventory, list[dict]]:
    """Every manifest of `invoke up` for this inventory, in playbook order."""
    inv = inventories.load(inventory)
    rendered = playbook.render_all(playbook.load("up").roles, inv)
    return inv, [obj for manifests in rendered.values() for obj in manifests]


def resolve_secrets(objects: list[dict], live: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """'namespace/name' -> decoded data of every rendered Secret, filled as the engine fills them.

    `live` ('namespace/name' -> decoded data) plays the live Secret of a cluster: generated keys
    keep those values, as they do across `invoke up` runs."""
    live = live or {}
    known: dict[str, str] = {}
    out = {}
    for obj in objects:
        if obj.get("kind") != "Secret":
            continue
        ref = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        live_obj = None
        if ref in live:
            live_obj = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in live[ref].items()}}
        filled = diff.fill_generated(diff.stamp(obj), live_obj, known)
        data = {k: base64.b64decode(v).decode() for k, v in (filled.get("data") or {}).items()}
        data.update(filled.get("stringData") or {})
        out[ref] = data
    return out


class Objects:
    """The rendered objects with the resolved Secrets, looked up by kind, namespace and name."""

    def __init__(self, objects: list[dict], secrets: dict[str, dict[str, str]]):
        self.objects = objects
        self.secrets = secrets

    def get(self, kind: str, namespace: str, name: str) -> dict:
        for obj in self.objects:
            meta = obj["metadata"]
            if obj["kind"] == kind and meta.get("namespace") == namespace and meta["name"] == name:
                return obj
        raise RenderError(f"no {kind} {namespace}/{name} among the rendered manifests")

    def configmap(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self.get("ConfigMap", namespace, name).get("data") or {})

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        ref = f"{namespace}/{name}"
        if ref not in self.secrets:
            raise RenderError(f"no Secret {ref} among the rendered manifests")
        return self.secrets[ref]


# ------------------------------------------------------------------ pods


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict, name: str | None = None, init: bool = False) -> dict:
    containers = pod_spec(workload).get("initContainers" if init else "containers") or []
    if name is None and len(containers) == 1:
        return containers[0]
    for c in containers:
        if c["name"] == name:
            return c
    raise RenderError(f"{workload['kind']} {workload['metadata']['name']} has no container {name!r}")


def pod_name(workload: dict) -> str:
    """A name like the pod's: <name>-0 (a StatefulSet's first pod; a stand-in for a Deployment's)."""
    return f"{workload['metadata']['name']}-0"


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes, others stay."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR_REF.sub(sub, value)


def _field(workload: dict, namespace: str, path: str) -> str:
    fields = {
        "metadata.name": pod_name(workload),
        "metadata.namespace": namespace,
        "spec.serviceAccountName": pod_spec(workload).get("serviceAccountName", "default"),
        "spec.nodeName": "testbed",
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.0.0.1",
    }
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str(workload["spec"]["template"]["metadata"].get(m.group(1), {}).get(m.group(2), ""))
    if path not in fields:
        raise RenderError(f"fieldRef {path} of {workload['metadata']['name']} is not supported by the testbed")
    return fields[path]


def resolve_env(objs: Objects, workload: dict, c: dict, image_env: dict[str, str] | None = None) -> dict[str, str]:
    """The container's environment as the kubelet builds it: image ENV, HOSTNAME, envFrom, env."""
    namespace = workload["metadata"]["namespace"]
    env: dict[str, str] = dict(image_env or {})
    env["HOSTNAME"] = pod_name(workload)  # the kubelet sets it to the pod's name
    where = f"{workload['kind']} {namespace}/{workload['metadata']['name']} container {c['name']}"
    for source in c.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = objs.configmap(namespace, source["configMapRef"]["name"])
        elif "secretRef" in source:
            data = objs.secret(namespace, source["secretRef"]["name"])
        else:
            raise RenderError(f"{where}: envFrom {source} is not supported by the testbed")
        env.update({prefix + k: v for k, v in data.items()})
    for item in c.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = _expand(item.get("value", ""), env)
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            data = objs.secret(namespace, r["name"])
            if r["key"] not in data:
                raise RenderError(f"{where}: env {name} names key {r['key']} that Secret {r['name']} does not have")
            env[name] = data[r["key"]]
        elif "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            data = objs.configmap(namespace, r["name"])
            if r["key"] not in data:
                raise RenderError(f"{where}: env {name} names key {r['key']} that ConfigMap {r['name']} does not have")
            env[name] = data[r["key"]]
        elif "fieldRef" in ref:
            env[name] = _field(workload, namespace, ref["fieldRef"]["fieldPath"])
        else:
            raise RenderError(f"{where}: env {name} uses {sorted(ref)}, which the testbed does not resolve")
    return env


def mounts(objs: Objects, workload: dict, c: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(files, volumes): every file the container sees from a ConfigMap or Secret volume, by its
    path in the pod; and every other mount (pod path -> volume kind, e.g. emptyDir)."""
    namespace = workload["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes") or []}
    for claim in workload["spec"].get("volumeClaimTemplates") or []:  # a StatefulSet's own volumes
        volumes.setdefault(claim["metadata"]["name"], {"name": claim["metadata"]["name"], "volumeClaimTemplate": {}})
    files: dict[str, str] = {}
    others: dict[str, str] = {}
    for m in c.get("volumeMounts") or []:
        volume = volumes.get(m["name"])
        if volume is None:
            raise RenderError(f"{workload['metadata']['name']}: mount {m['mountPath']} names no volume {m['name']}")
        if "configMap" in volume or "secret" in volume:
            if "configMap" in volume:
                source = volume["configMap"]
                data = objs.configmap(namespace, source["name"])
            else:
                source = volume["secret"]
                data = objs.secret(namespace, source["secretName"])
            if source.get("items"):
                visible = {}
                for item in source["items"]:
                    if item["key"] not in data:
                        if source.get("optional"):
                            continue
                        kind = "ConfigMap" if "configMap" in volume else "Secret"
                        raise RenderError(f"{workload['metadata']['name']}: volume {m['name']} maps key "
                                          f"{item['key']}, which is not in the {kind}")
                    visible[item["path"]] = data[item["key"]]
            else:
                visible = dict(data)
            mount = m["mountPath"].rstrip("/")
            if m.get("subPath"):
                if m["subPath"] not in visible:
                    raise RenderError(f"{workload['metadata']['name']}: subPath {m['subPath']} of {mount} is not in "
                                      f"volume {m['name']}")
                files[mount] = visible[m["subPath"]]
            else:
                for rel, content in visible.items():
                    files[f"{mount}/{rel}"] = content
        else:
            kind = next((k for k in volume if k != "name"), "unknown")
            others[m["mountPath"].rstrip("/")] = kind
    return files, others


def container_config(objs: Objects, workload: dict, c: dict, paths: dict[str, str],
                     image_env: dict[str, str] | None = None) -> dict[str, Any]:
    files, volumes = mounts(objs, workload, c)
    out: dict[str, Any] = {"env": resolve_env(objs, workload, c, image_env), "files": files, "volumes": volumes,
                           "paths": dict(paths)}
    if c.get("command"):
        out["command"] = list(c["command"])
    if c.get("args"):
        out["args"] = list(c["args"])
    return out


def service_ports(objs: Objects, service_name: str, namespace: str, workload: dict, c: dict) -> list[dict]:
    """The Service's ports as the testbed serves them: host (the in-cluster name), port, the
    container port it targets (a named targetPort resolved through the container's ports), nodePort."""
    svc = objs.get("Service", namespace, service_name)
    named = {p["name"]: p["containerPort"] for p in c.get("ports") or [] if "name" in p}
    out = []
    for p in svc["spec"]["ports"]:
        target = p.get("targetPort", p["port"])
        if isinstance(target, str):
            if target not in named:
                raise RenderError(f"Service {namespace}/{service_name} targets port {target!r}, "
                                  f"which container {c['name']} does not name")
            target = named[target]
        entry = {"host": f"{service_name}.{namespace}.svc.cluster.local", "port": p["port"], "target_port": target}
        if p.get("nodePort"):
            entry["node_port"] = p["nodePort"]
        out.append(entry)
    return out


def trino_ports(objs: Objects, namespace: str, workload: dict, c: dict) -> list[dict]:
    """trino-coordinator's ports; with security.trino_auth its HTTPS port also takes the NodePort
    of trino-public, which exposes that port alone (the testbed serves both on one address)."""
    ports = service_ports(objs, "trino-coordinator", namespace, workload, c)
    try:
        public = service_ports(objs, "trino-public", namespace, workload, c)
    except RenderError:
        return ports
    for p in public:
        next(s for s in ports if s["target_port"] == p["target_port"])["node_port"] = p["node_port"]
    return ports


def readonly_job(objects: list[dict], namespace: str, pods: str) -> dict:
    """The one Job of the namespace whose pods are named `pods` (the postgres role's `<name>-readonly`)."""
    jobs = [o for o in objects if o["kind"] == "Job" and o["metadata"].get("namespace") == namespace
            and o["spec"]["template"]["metadata"]["labels"].get(NAME) == pods]
    if len(jobs) != 1:
        raise RenderError(f"expected one Job {namespace}/{pods}-* among the rendered manifests, found {len(jobs)}")
    return jobs[0]


# ------------------------------------------------------------------ the config


def config_from_render(inventory: str = "docker-desktop", live: dict[str, dict[str, str]] | None = None) -> dict:
    """services.up()'s config, from the roles' rendered manifests only (see the module docstring)."""
    inv, objects = render(inventory)
    objs = Objects(objects, resolve_secrets(objects, live))
    ns = inv.vars["namespaces"]
    platform_ns, hub_ns = ns["platform"], ns["jupyterhub"]

    # PostgreSQL: one instance per entry of files/platform.yml, and the Jobs that make the read-only logins
    instances, readonly_jobs = {}, {}
    for pg in platform()["postgres"]:
        namespace = ns[pg["namespace"]]
        sts = objs.get("StatefulSet", namespace, pg["name"])
        c = container(sts, "postgres")
        cfg = container_config(objs, sts, c, POSTGRES_PATHS)
        creds = objs.secret(namespace, f"{pg['name']}-credentials")
        instances[f"postgres-{pg['key']}"] = {
            **cfg,
            "fqdn": f"{pg['name']}.{namespace}.svc.cluster.local",
            "database": pg["database"],
            "user": creds["username"],
            "password": creds["password"],
            "service": service_ports(objs, pg["name"], namespace, sts, c),
        }
        if pg.get("reader_schemas"):
            job = readonly_job(objects, namespace, f"{pg['name']}-readonly")
            readonly_jobs[f"postgres-{pg['key']}"] = container_config(objs, job, container(job), POSTGRES_JOB_PATHS)

    # object store: the server the inventory chose (minio.server) with its init containers, the
    # root login, the bucket Job, and the Services (the console's NodePort reaches the same pod, so
    # its entry carries the pod's address: minio-console has no in-cluster users to need a name)
    minio = objs.get("StatefulSet", platform_ns, "minio")
    minio_c = container(minio)
    minio_creds = objs.secret(platform_ns, "minio-credentials")
    jobs = [o for o in objects if o["kind"] == "Job" and o["metadata"].get("namespace") == platform_ns
            and o["metadata"]["name"].startswith("minio-buckets-")]
    if len(jobs) != 1:
        raise RenderError(f"expected one Job {platform_ns}/minio-buckets-* among the rendered manifests, found {len(jobs)}")
    api = service_ports(objs, "minio", platform_ns, minio, minio_c)
    console = service_ports(objs, "minio-console", platform_ns, minio, minio_c)
    s3 = {
        **container_config(objs, minio, minio_c, S3_PATHS),
        "server": inv.vars["minio"]["server"],
        "init_containers": [
            {"name": ic["name"], **container_config(objs, minio, ic, S3_PATHS)}
            for ic in pod_spec(minio).get("initContainers") or []
        ],
        "access_key": minio_creds["root-user"],
        "secret_key": minio_creds["root-password"],
        "bucket": inv.vars["minio"]["bucket"],
        "prefixes": list(inv.vars["minio"]["prefixes"]),
        "service": api + [{**p, "host": api[0]["host"]} for p in console],
        "bucket_job": container_config(objs, jobs[0], container(jobs[0], "buckets"), S3_JOB_PATHS),
    }

    # Hive Metastore: the metastore container, and the init containers it runs before
    hms = objs.get("Deployment", platform_ns, "hive-metastore")
    hms_c = container(hms, "metastore")
    hive = {
        **container_config(objs, hms, hms_c, HIVE_PATHS, IMAGE_ENV["hive-metastore"]),
        "init_containers": [
            {"name": ic["name"], **container_config(objs, hms, ic, HIVE_PATHS)}
            for ic in pod_spec(hms).get("initContainers") or []
        ],
        "service": service_ports(objs, "hive-metastore", platform_ns, hms, hms_c),
    }

    # Trino coordinator
    trino_d = objs.get("Deployment", platform_ns, "trino-coordinator")
    trino_c = container(trino_d, "trino")
    trino = {
        **container_config(objs, trino_d, trino_c, TRINO_PATHS),
        "service": trino_ports(objs, platform_ns, trino_d, trino_c),
    }

    # JupyterHub: the hub, and the proxy it drives
    hub_d = objs.get("Deployment", hub_ns, "hub")
    hub_c = container(hub_d, "hub")
    proxy_d = objs.get("Deployment", hub_ns, "proxy")
    proxy_c = container(proxy_d, "chp")
    hub_env = container_config(objs, hub_d, hub_c, JUPYTERHUB_PATHS)["env"]
    jupyterhub = {
        **container_config(objs, hub_d, hub_c, JUPYTERHUB_PATHS),
        # what the config's user servers mount and read: the starter files, and their logins' Secret
        "home_template": {k: objs.get("ConfigMap", hub_ns, hub_env["DATAMESH_HOME_TEMPLATE"]).get(k) or {}
                          for k in ("data", "binaryData")},
        "user_secret": {"name": hub_env["DATAMESH_USER_LOGINS"],
                        "data": objs.secret(hub_ns, hub_env["DATAMESH_USER_LOGINS"])},
        "service": service_ports(objs, "hub", hub_ns, hub_d, hub_c),
        "proxy": {
            **container_config(objs, proxy_d, proxy_c, {}),
            "service": service_ports(objs, "proxy-public", hub_ns, proxy_d, proxy_c)
                       + service_ports(objs, "proxy-api", hub_ns, proxy_d, proxy_c),
        },
    }

    # nginx serving the dbt docs
    docs_d = objs.get("Deployment", platform_ns, "dbt-docs")
    docs_c = container(docs_d, "nginx")
    nginx = {
        **container_config(objs, docs_d, docs_c, NGINX_PATHS),
        "service": service_ports(objs, "dbt-docs", platform_ns, docs_d, docs_c),
        "sync": container_config(objs, docs_d, container(docs_d, "sync"), DOCS_SYNC_PATHS),
    }

    return {
        "source": f"rendered:{inv.name}",
        "secrets": objs.secrets,
        "postgres": {"instances": instances, "readonly_jobs": readonly_jobs},
        "s3": s3,
        "hive": hive,
        "trino": trino,
        "jupyterhub": jupyterhub,
        "nginx": nginx,
    }
