# JupyterHub configuration for datamesh: hub 4.1 with KubeSpawner 6.2 (the k8s-hub 3.3.8 image),
# the proxy running as its own Deployment. Mounted over
# /usr/local/etc/jupyterhub/jupyterhub_config.py by roles/jupyterhub; it holds no credential and
# no cluster-specific name: everything comes from the hub container's environment, which the
# role renders (logins and the proxy token from the Secret jupyterhub-credentials).
import os

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"jupyterhub_config.py needs the environment variable {name}; the jupyterhub role sets it")
    return value


# -- hub and proxy ------------------------------------------------------------------------
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_port = 8081
c.JupyterHub.hub_connect_ip = env("DATAMESH_HUB_CONNECT_IP")  # the hub Service's FQDN
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"  # on the hub's volume
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = False  # a hub restart keeps users' servers running

c.ConfigurableHTTPProxy.should_start = False  # the proxy is its own Deployment
c.ConfigurableHTTPProxy.api_url = env("DATAMESH_PROXY_API_URL")
c.ConfigurableHTTPProxy.auth_token = env("CONFIGPROXY_AUTH_TOKEN")

# -- login: the lab's single administrator ------------------------------------------------
admin = env("JUPYTERHUB_ADMIN_USER")
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = env("JUPYTERHUB_ADMIN_PASSWORD")
c.Authenticator.admin_users = {admin}
c.Authenticator.allowed_users = {admin}

# -- user servers -------------------------------------------------------------------------
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = env("POD_NAMESPACE")
c.KubeSpawner.image = env("DATAMESH_USER_IMAGE")
c.KubeSpawner.image_pull_policy = "IfNotPresent"  # a locally built image is never pulled
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.working_dir = "/home/jovyan"
c.KubeSpawner.start_timeout = 600  # the first pull of the image can be slow
c.KubeSpawner.http_timeout = 120

# What the budget preflight counts for the server (the hub Deployment's
# datamesh.io/extra-requests annotation is rendered from the same inventory settings).
c.KubeSpawner.cpu_guarantee = float(env("DATAMESH_USER_CPU_GUARANTEE"))
c.KubeSpawner.cpu_limit = float(env("DATAMESH_USER_CPU_LIMIT"))
c.KubeSpawner.mem_guarantee = int(env("DATAMESH_USER_MEM_GUARANTEE"))  # bytes
c.KubeSpawner.mem_limit = int(env("DATAMESH_USER_MEM_LIMIT"))

# Labelled as part of the platform's jupyterhub component (the preflight then does not count a
# running server twice, and `down` removes servers with the hub, volumes only with --purge), but
# not as managed by datamesh: KubeSpawner owns these pods and volumes.
part_of = {"app.kubernetes.io/part-of": "datamesh", "app.kubernetes.io/component": "jupyterhub",
           "app.kubernetes.io/name": "jupyterhub-user"}
c.KubeSpawner.extra_labels = part_of
c.KubeSpawner.storage_extra_labels = part_of

# Each user's home on a volume of its own, kept when the server stops.
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.pvc_name_template = "claim-{username}"
c.KubeSpawner.storage_capacity = env("DATAMESH_USER_STORAGE")
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
if os.environ.get("DATAMESH_STORAGE_CLASS"):
    c.KubeSpawner.storage_class = os.environ["DATAMESH_STORAGE_CLASS"]
c.KubeSpawner.volumes = [
    {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}},
    {"name": "home-template", "configMap": {"name": env("DATAMESH_HOME_TEMPLATE")}},
]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]

# Before the server starts: the starter files (~/dbt_projects, ~/notebooks, ~/scripts, ~/data/)
# copied into the home where missing, so the user's own edits always win (files/jupyterhub/copy-home.sh).
c.KubeSpawner.init_containers = [{
    "name": "home",
    "image": env("DATAMESH_USER_IMAGE"),
    "command": ["/bin/sh", "/opt/datamesh/home-template/copy-home.sh"],
    "env": [{"name": "HOME", "value": "/home/jovyan"}, {"name": "TEMPLATE", "value": "/opt/datamesh/home-template"}],
    "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"},
                     {"name": "home-template", "mountPath": "/opt/datamesh/home-template", "readOnly": True}],
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
    "securityContext": {"runAsUser": 1000, "runAsGroup": 100, "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}]

# jovyan (uid 1000, group users 100), as in the jupyterhub-dbt image and Jupyter's stacks.
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 100
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.pod_security_context = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
    "fsGroupChangePolicy": "OnRootMismatch",
}
c.KubeSpawner.container_security_context = {"capabilities": {"drop": ["ALL"]}}
c.KubeSpawner.service_account = None  # user servers get no Kubernetes API token

# Where the platform's services answer from inside the cluster, and the logins from the Secret
# jupyterhub-user-credentials by reference (no credential in this file or the pod spec). What
# ~/scripts/utils.py, the notebooks and ~/dbt_projects/profiles.yml read.
platform = env("DATAMESH_PLATFORM_NAMESPACE")
user_secret = env("DATAMESH_USER_LOGINS")


def from_secret(key):
    return {"valueFrom": {"secretKeyRef": {"name": user_secret, "key": key}}}


c.KubeSpawner.environment = {
    "MINIO_ENDPOINT": f"minio.{platform}.svc.cluster.local:9000",
    "MINIO_BUCKET": env("DATAMESH_BUCKET"),
    "MINIO_SECURE": "false",
    "MINIO_ACCESS_KEY": from_secret("s3-access-key"),
    "MINIO_SECRET_KEY": from_secret("s3-secret-key"),
    "TRINO_HOST": f"trino-coordinator.{platform}.svc.cluster.local",
}
# Trino is the one way to the domains' data: servers log in as Trino's admin (the hub's one user is
# its admin) over HTTPS, trusting the certificate mounted from the Secret; no database login.
if env("DATAMESH_TRINO_AUTH") == "true":
    c.KubeSpawner.environment.update({
        "TRINO_PORT": "8443",
        "TRINO_USER": "admin",
        "TRINO_PASSWORD": from_secret("trino-password"),
        "TRINO_CA": "/etc/datamesh/trino/ca.crt",
    })
    c.KubeSpawner.volumes.append(
        {"name": "trino-ca", "secret": {"secretName": user_secret, "items": [{"key": "trino-ca.crt", "path": "ca.crt"}]}})
    c.KubeSpawner.volume_mounts.append({"name": "trino-ca", "mountPath": "/etc/datamesh/trino", "readOnly": True})
else:
    c.KubeSpawner.environment.update({"TRINO_PORT": "8080", "TRINO_USER": "{username}", "TRINO_METHOD": "none"})
