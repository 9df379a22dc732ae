"""One Secret per service: the logins of PostgreSQL, MinIO, JupyterHub and Grafana.

With `credentials.policy: lab` the passwords are the inventory's lab passwords, visibly; with
`generate` they render empty and are listed in the `datamesh.io/generated-keys` annotation: the
engine fills them with random values the first time and reads them back on every later run,
so a password is made once and never changes. Tokens that are not logins are always generated.
`trino-catalog-credentials` copies the domain databases' logins next to Trino, and
`jupyterhub-user-credentials` the sources' and the object store's next to users' servers
(`datamesh.io/copy-keys`).
"""

from datamesh.diff import CERTIFICATE, CERTIFICATE_NAMES, COPIED, GENERATED, PASSWORD_FILE
from datamesh.manifests import b64, metadata, platform, secret_name
from datamesh.trino import TLS_SECRET, USER as TRINO_ADMIN, USERS_SECRET

DEPENDS_ON = ["namespaces"]
TRINO_USERS = ("admin", "sales", "marketing", "analyst")  # what each may do: files/trino/rules.json (README: "Trino users")


def render(vars: dict) -> list[dict]:
    creds = vars["credentials"]
    namespaces = vars["namespaces"]

    def password(service: str) -> str | None:
        return creds["lab_passwords"][service] if creds["policy"] == "lab" else None

    secrets = [
        secret(namespaces[pg["namespace"]], secret_name(pg["name"]), postgres_logins(pg, creds["users"], password))
        for pg in platform()["postgres"]
    ]
    secrets.append(secret(namespaces["platform"], secret_name("minio"),
                          {"root-user": creds["users"]["minio"], "root-password": password("minio")}))
    secrets.append(secret(namespaces["platform"], secret_name("grafana"),
                          {"admin-user": creds["users"]["grafana"], "admin-password": password("grafana")}))
    secrets.append(secret(namespaces["jupyterhub"], secret_name("jupyterhub"),
                          {"admin-user": creds["users"]["jupyterhub"], "admin-password": password("jupyterhub"),
                           "proxy-auth-token": None}))
    secrets.append(trino_catalog_credentials(namespaces))
    if vars["security"]["trino_auth"]:
        secrets += trino_logins(vars, password("trino"))
    secrets.append(jupyterhub_user_credentials(namespaces, vars["security"]["trino_auth"]))
    return secrets


def trino_logins(vars: dict, lab_password: str | None) -> list[dict]:
    """Trino's people and its certificate: `trino-users` holds each user's password (the lab password
    under policy lab), the password file of their PBKDF2 hashes the engine derives from them, and the
    secret Trino's nodes sign their internal calls with; `trino-tls` a self-signed certificate for the
    coordinator's in-cluster names and the NodePort host, made once (`ca.crt` is what clients trust)."""
    namespace = vars["namespaces"]["platform"]
    users = secret(namespace, USERS_SECRET, {**{f"{user}-password": lab_password for user in TRINO_USERS},
                                              "password.db": "", "shared-secret": None})
    users["metadata"]["annotations"][PASSWORD_FILE] = "password.db"
    service = "trino-coordinator"
    names = [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local",
             "localhost", "127.0.0.1"]
    if vars["hosts"]["address"] not in names:
        names.append(vars["hosts"]["address"])
    tls = secret(namespace, TLS_SECRET, {"tls.pem": "", "ca.crt": ""})
    tls["metadata"].setdefault("annotations", {}).update({CERTIFICATE: "tls.pem,ca.crt", CERTIFICATE_NAMES: ",".join(names)})
    return [users, tls]


def trino_catalog_credentials(namespaces: dict) -> dict:
    """The domain databases' logins, copied next to Trino, whose catalogs read them from env."""
    copies = {}
    for pg in platform()["postgres"]:
        if pg["namespace"] == "platform":
            continue
        source = f"{namespaces[pg['namespace']]}/{secret_name(pg['name'])}"
        copies[f"{pg['key']}-username"] = f"{source}:username"
        copies[f"{pg['key']}-password"] = f"{source}:password"
    return copied(namespaces["platform"], "trino-catalog-credentials", copies)


def jupyterhub_user_credentials(namespaces: dict, trino_auth: bool) -> dict:
    """What users' servers log in with (Trino, whose CA they trust, and the object store), next to them.

    No database login: users reach the sources through Trino, the governed way in, and the
    network policies keep their servers away from the databases.

    KubeSpawner puts these keys into each server's environment by secretKeyRef
    (files/jupyterhub/jupyterhub_config.py), so no login is in the hub's config or the pod spec.
    """
    platform_ns = namespaces["platform"]
    copies = {}
    if trino_auth:
        copies["trino-password"] = f"{platform_ns}/{USERS_SECRET}:{TRINO_ADMIN}-password"
        copies["trino-ca.crt"] = f"{platform_ns}/{TLS_SECRET}:ca.crt"
    copies["s3-access-key"] = f"{platform_ns}/{secret_name('minio')}:root-user"
    copies["s3-secret-key"] = f"{platform_ns}/{secret_name('minio')}:root-password"
    return copied(namespaces["jupyterhub"], "jupyterhub-user-credentials", copies)


def copied(namespace: str, name: str, copies: dict[str, str]) -> dict:
    """A Secret whose keys the engine copies from other Secrets (`datamesh.io/copy-keys`): pods can
    read only the Secrets of their own namespace. They render empty, like generated keys."""
    annotation = ",".join(f"{key}={source}" for key, source in copies.items())
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata("credentials", name, namespace, annotations={COPIED: annotation}),
        "type": "Opaque",
        "data": {key: "" for key in copies},
    }


def secret(namespace: str, name: str, values: dict[str, str | None]) -> dict:
    """A Secret whose None values are generated by the engine on first apply."""
    generated = [key for key, value in values.items() if value is None]
    annotations = {GENERATED: ",".join(generated)} if generated else {}
    meta = metadata("credentials", name, namespace, **({"annotations": annotations} if annotations else {}))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {key: b64(value or "") for key, value in values.items()},
    }


def postgres_logins(pg: dict, users: dict, password) -> dict[str, str | None]:
    """A database's owner login and, where files/platform.yml gives it `reader_schemas`, its
    read-only login (`reader-*`), which the postgres role's Job makes in the database."""
    logins = {"username": users["postgres"], "password": password("postgres")}
    if pg.get("reader_schemas"):
        logins.update({"reader-username": users["postgres_reader"], "reader-password": password("postgres_reader")})
    return logins
