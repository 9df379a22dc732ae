"""Grafana with provisioned PostgreSQL data sources and the sales and campaign dashboards.

Data sources (files/grafana/datasources.yaml) read their addresses, users and passwords from
the container's environment, filled from Secrets. Dashboards only read, so each data source logs
in with its database's read-only login (`reader-username`, `reader-password`; roles/postgres),
never the owner: from the data-platform databases' own Secrets, and for the domain databases,
whose Secrets live in their domains' namespaces, from the Secret grafana-datasource-credentials,
whose keys the engine copies from them (`datamesh.io/copy-keys`).
Dashboards are the JSON files of files/grafana/dashboards. The admin login comes from the
credentials role's Secret grafana-credentials; the rest of Grafana's state is an emptyDir.
"""

from datamesh.diff import COPIED
from datamesh.manifests import (
    FILES, config_checksum, container_security, deployment, fqdn, http_probes, metadata, postgres, read, secret_name,
    secret_ref, service, service_port,
)
from datamesh.netpol import network_policies

DEPENDS_ON = ["namespaces", "credentials"]  # data sources point at postgres, but nothing waits on it
COMPONENT = "grafana"
PORT = 3000
UID = 472  # grafana in the official image (USER 472, group root)
COPY_SECRET = "grafana-datasource-credentials"
DASHBOARDS = "/etc/grafana/dashboards/datamesh"  # options.path of files/grafana/dashboards.yaml
# Each data source of files/grafana/datasources.yaml: its environment prefix and PostgreSQL key.
DATASOURCES = {"SALES": "sales", "MARKETING": "marketing",
               "SALES_DOMAIN": "sales-domain", "MARKETING_DOMAIN": "marketing-domain"}
LOGIN = {"USER": "reader-username", "PASSWORD": "reader-password"}  # env suffix -> key of the database's Secret


def render(vars: dict) -> list[dict]:
    ns = vars["namespaces"]["platform"]
    provisioning = {"datasources.yaml": read("grafana/datasources.yaml"), "dashboards.yaml": read("grafana/dashboards.yaml")}
    dashboards = {path.name: path.read_text() for path in sorted((FILES / "grafana/dashboards").glob("*.json"))}
    configmaps = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "grafana-provisioning", ns),
         "data": provisioning},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(COMPONENT, "grafana-dashboards", ns),
         "data": dashboards},
    ]
    return [
        copied_credentials(vars, ns),
        *configmaps,
        service(COMPONENT, "grafana", ns, service_port("http", PORT, node_port=vars["nodeports"]["grafana"])),
        grafana(vars, ns, configmaps),
    ] + network_policies(COMPONENT, vars)


def copied_credentials(vars: dict, ns: str) -> dict:
    """The domain databases' read-only logins, copied into Grafana's namespace by the engine (rendered empty)."""
    copies, data = [], {}
    for key in DATASOURCES.values():
        pg = postgres(key)
        source_ns = vars["namespaces"][pg["namespace"]]
        if source_ns == ns:
            continue  # a Secret in Grafana's own namespace is referenced directly
        for field in LOGIN.values():
            copies.append(f"{key}-{field}={source_ns}/{secret_name(pg['name'])}:{field}")
            data[f"{key}-{field}"] = ""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(COMPONENT, COPY_SECRET, ns, annotations={COPIED: ",".join(copies)}),
            "data": data}


def datasource_env(vars: dict, ns: str) -> list[dict]:
    env = []
    for prefix, key in DATASOURCES.items():
        pg = postgres(key)
        source_ns = vars["namespaces"][pg["namespace"]]
        env.append({"name": f"{prefix}_DB_ADDRESS", "value": f"{fqdn(pg['name'], source_ns)}:5432"})
        for suffix, field in LOGIN.items():
            ref = (secret_ref(secret_name(pg["name"]), field) if source_ns == ns
                   else secret_ref(COPY_SECRET, f"{key}-{field}"))
            env.append({"name": f"{prefix}_DB_{suffix}", "valueFrom": ref})
    return env


def grafana(vars: dict, ns: str, configmaps: list[dict]) -> dict:
    admin = secret_name("grafana")
    env = [
        {"name": "GF_SECURITY_ADMIN_USER", "valueFrom": secret_ref(admin, "admin-user")},
        {"name": "GF_SECURITY_ADMIN_PASSWORD", "valueFrom": secret_ref(admin, "admin-password")},
        {"name": "GF_PATHS_PROVISIONING", "value": "/etc/grafana/provisioning"},
        {"name": "GF_USERS_ALLOW_SIGN_UP", "value": "false"},
        {"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "false"},
        {"name": "GF_ANALYTICS_REPORTING_ENABLED", "value": "false"},
        {"name": "GF_ANALYTICS_CHECK_FOR_UPDATES", "value": "false"},
        {"name": "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "value": "false"},
        {"name": "GF_NEWS_NEWS_FEED_ENABLED", "value": "false"},
        *datasource_env(vars, ns),
    ]
    pod_spec = {
        "automountServiceAccountToken": False,
        # as Grafana documents for Kubernetes: its user, the image's group 0 kept, volumes for 472
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": UID, "supplementalGroups": [0],
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "grafana",
            "image": vars["images"]["grafana"],
            "env": env,
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "resources": vars["resources"]["grafana"],
            **http_probes("/api/health", "http", ready=(5, 3), live=(60, 6)),
            "securityContext": container_security(),
            "volumeMounts": [
                {"name": "data", "mountPath": "/var/lib/grafana"},
                {"name": "provisioning", "mountPath": "/etc/grafana/provisioning/datasources/datasources.yaml",
                 "subPath": "datasources.yaml", "readOnly": True},
                {"name": "provisioning", "mountPath": "/etc/grafana/provisioning/dashboards/dashboards.yaml",
                 "subPath": "dashboards.yaml", "readOnly": True},
                {"name": "dashboards", "mountPath": DASHBOARDS, "readOnly": True},
            ],
        }],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "provisioning", "configMap": {"name": "grafana-provisioning"}},
            {"name": "dashboards", "configMap": {"name": "grafana-dashboards"}},
        ],
    }
    # provisioning is read at start: new files roll the pod
    return deployment(COMPONENT, "grafana", ns, pod_spec, pod_annotations=config_checksum(*configmaps))
