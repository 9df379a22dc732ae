"""Trino's logins, with `security.trino_auth` (the trino role's render.py asks here).

People log in with a password over HTTPS only: Trino 476 checks passwords on HTTPS alone (over
HTTP, `allow-insecure-over-http` would let anyone name any user without a password), so the
coordinator serves HTTPS on 8443 with the engine's self-signed certificate (Secret trino-tls) and
its plain-HTTP port refuses every login while serving /v1/info and the nodes' own calls, which
they sign with a shared secret. The password file (PBKDF2 hashes the engine derives from the
passwords in trino-users) and the access rules (files/trino/rules.json) decide who may do what.
"""

from datamesh.manifests import read, secret_ref
from datamesh.trino import TLS_SECRET, USERS_SECRET
PUBLIC = "trino-public"  # the NodePort Service, HTTPS alone
HTTPS_PORT = 8443
USERS_DIR, TLS_DIR = "/etc/trino-users", "/etc/trino-tls"
SHARED_SECRET = {"internal-communication.shared-secret": "${ENV:TRINO_SHARED_SECRET}"}


def server_config(coordinator: bool) -> dict[str, str]:
    if not coordinator:
        return dict(SHARED_SECRET)
    return {
        "http-server.https.enabled": "true",
        "http-server.https.port": str(HTTPS_PORT),
        "http-server.https.keystore.path": f"{TLS_DIR}/tls.pem",
        "http-server.authentication.type": "PASSWORD",
        "http-server.authentication.allow-insecure-over-http": "false",
        **SHARED_SECRET,
    }


def config_files(etc: str) -> dict[str, dict[str, str] | str]:
    """The ConfigMap's files: the two plugins' properties (as key -> value) and the rules' JSON text."""
    return {
        "password-authenticator.properties": {"password-authenticator.name": "file",
                                              "file.password-file": f"{USERS_DIR}/password.db"},
        "access-control.properties": {"access-control.name": "file", "security.config-file": f"{etc}/rules.json"},
        "rules.json": read("trino/rules.json"),
    }


def pod_parts(coordinator: bool) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(env, ports, volume mounts, volumes) a server adds: the shared secret for every node; the
    HTTPS port, the password file and the keystore for the coordinator."""
    env = [{"name": "TRINO_SHARED_SECRET", "valueFrom": secret_ref(USERS_SECRET, "shared-secret")}]
    if not coordinator:
        return env, [], [], []
    ports = [{"name": "https", "containerPort": HTTPS_PORT, "protocol": "TCP"}]
    mounts = [{"name": "users", "mountPath": USERS_DIR, "readOnly": True},
              {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}]
    volumes = [{"name": "users", "secret": {"secretName": USERS_SECRET, "items": [{"key": "password.db", "path": "password.db"}]}},
               {"name": "tls", "secret": {"secretName": TLS_SECRET, "items": [{"key": "tls.pem", "path": "tls.pem"}]}}]
    return env, ports, mounts, volumes
