"""The object store: versitygw (the default) or MinIO from quay.io, chosen by `minio.server`.

Whichever server runs, users' code keeps its address (Service minio, port 9000), the console keeps
its NodePort, the root login comes only from the minio-credentials Secret, and no image is pulled
from MinIO's deleted Docker Hub repositories. Where the testbed has built versitygw and installed
the AWS CLI (`python -m testbed.services install --only s3`), the bucket Job's script also
runs against the real server here.
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from datamesh import ROOT, inventory, playbook, role, status
from datamesh.errors import DatameshError
from datamesh.manifests import NOTICE, URL_PATH, dump_all
from datamesh.report import Reporter
from testbed import objectstore as svc
from testbed.common import component_dir
from testbed.rendered import config_from_render
from tests.unit.helpers import by_kind, containers, find, render

SERVERS = ("versitygw", "minio")
# MinIO's Docker Hub repositories, deleted in September 2026, in any spelling a pull accepts
DOCKER_HUB_MINIO = re.compile(r"^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?minio/")


@pytest.fixture(params=SERVERS)
def server(request) -> str:
    return request.param


def inventory_with(write_inventory, server: str, base: str = "docker-desktop") -> inventory.Inventory:
    """The `base` inventory with minio.server set."""
    text = (ROOT / "inventory" / f"{base}.yml").read_text()
    return inventory.load(str(write_inventory(f"{text}\nminio:\n  server: {server}\n", name=f"{base}-{server}.yml")))


def render_minio(inv: inventory.Inventory) -> list[dict]:
    return role.load("minio").render(inv.vars)


# -- both servers -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", inventory.available())
def test_no_image_or_text_names_minios_docker_hub_repositories(write_inventory, server, name):
    rendered = playbook.render_all(playbook.load("up").roles, inventory_with(write_inventory, server, name))
    objects = [obj for manifests in rendered.values() for obj in manifests]
    images = {c["image"] for obj in objects for c in containers(obj)}
    assert images and not [i for i in images if DOCKER_HUB_MINIO.match(i)], images
    text = dump_all(objects)
    assert not re.search(r"(?<![\w./-])(?:docker\.io/)?minio/(?:minio|mc)\b", text)


def test_the_default_is_versitygw_and_every_shipped_inventory_keeps_it():
    assert inventory.load_defaults()["minio"]["server"] == "versitygw"
    for name in inventory.available():
        assert inventory.load(name)["minio"]["server"] in SERVERS


def test_users_address_and_the_console_nodeport_stay(write_inventory, server):
    objects = render_minio(inventory_with(write_inventory, server))
    sts = find(objects, "StatefulSet", "minio")
    ports = {p["name"]: p["containerPort"] for p in sts["spec"]["template"]["spec"]["containers"][0]["ports"]}
    api = find(objects, "Service", "minio")
    assert api["metadata"]["namespace"] == "data-platform" and api["spec"]["type"] == "ClusterIP"
    assert [(p["port"], ports[p["targetPort"]]) for p in api["spec"]["ports"]] == [(9000, 9000)]
    assert api["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    console = find(objects, "Service", "minio-console")
    assert [(p["port"], ports[p["targetPort"]], p["nodePort"]) for p in console["spec"]["ports"]] == [(9001, 9001, 30082)]
    assert role.load("minio").module.endpoint("data-platform") == "http://minio.data-platform.svc.cluster.local:9000"


def test_credentials_come_only_from_the_secret(write_inventory, server):
    objects = render_minio(inventory_with(write_inventory, server))
    logins = 0
    for obj in objects:
        for container in containers(obj):
            for env in container.get("env", []):
                if re.search(r"USER|KEY|SECRET|PASSWORD", env["name"]):
                    assert "value" not in env, env
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "minio-credentials", env
                    logins += 1
    assert logins == 4  # the server's root login and the bucket Job's
    assert "minioadmin" not in dump_all(objects)


def test_the_bucket_job_uses_a_maintained_s3_cli_and_follows_the_server(write_inventory, server):
    objects = render_minio(inventory_with(write_inventory, server))
    job = find(objects, "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert not DOCKER_HUB_MINIO.match(container["image"]) and not container["image"].startswith("quay.io/minio/")
    assert re.fullmatch(r"public\.ecr\.aws/aws-cli/aws-cli:2\.\d+\.\d+", container["image"])
    env = {e["name"]: e for e in container["env"]}
    assert env["S3_ENDPOINT"]["value"] == "http://minio.data-platform.svc.cluster.local:9000"
    assert env["S3_SERVER"]["value"] == server
    assert container["command"] == ["/bin/sh", "-c", (ROOT / "files/minio/buckets.sh").read_text()]
    other = render_minio(inventory_with(write_inventory, next(s for s in SERVERS if s != server)))
    assert find(other, "Job")["metadata"]["name"] != job["metadata"]["name"]  # a new server gets its bucket made


def test_the_bucket_script_waits_for_the_server_and_is_idempotent():
    script = (ROOT / "files/minio/buckets.sh").read_text()
    wait, create = script.index("until s3api list-buckets"), script.index("s3api create-bucket")
    assert wait < script.index("s3api head-bucket") < create < script.index("s3api put-object")
    assert "BucketAlreadyOwnedByYou" in script and "set -eu" in script
    assert "mc " not in script and "/tmp" not in script  # no MinIO client; HOME is the Job's emptyDir
    assert subprocess.run(["sh", "-n", str(ROOT / "files/minio/buckets.sh")]).returncode == 0


def test_an_unknown_server_is_refused_by_key(write_inventory):
    with pytest.raises(DatameshError, match=r"key 'minio\.server' must be one of versitygw, minio, got 'seaweedfs'"):
        render_minio(inventory_with(write_inventory, "seaweedfs"))


# -- versitygw --------------------------------------------------------------------------------

def test_versitygw_serves_s3_and_its_webui_on_the_volume_folder_of_its_own(write_inventory):
    inv = inventory_with(write_inventory, "versitygw")
    objects = render_minio(inv)
    sts = find(objects, "StatefulSet", "minio")
    spec = sts["spec"]["template"]["spec"]
    (init,), (container,) = spec["initContainers"], spec["containers"]
    assert container["image"] == init["image"] == inv["images"]["versitygw"]
    assert init["command"] == ["mkdir", "-p", "/data/versitygw"]
    args = container["args"]
    assert "command" not in container  # the image's entrypoint runs versitygw with these
    assert [args[i + 1] for i, a in enumerate(args) if a == "--port"] == [":9000", ":9001"]
    assert args[args.index("--webui-s3-prefix") + 1] == "/ui"
    assert args[args.index("--webui-gateways") + 1] == "http://localhost:30082"  # where the browser reaches S3
    assert args[-2:] == ["posix", "/data/versitygw"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": args[args.index("--health") + 1], "port": "api"}
    assert {m["mountPath"] for c in (init, container) for m in c["volumeMounts"]} == {"/data"}
    assert NOTICE not in sts["metadata"].get("annotations", {})
    assert find(objects, "Service", "minio-console")["metadata"]["annotations"] == {URL_PATH: "/ui/"}


def test_versitygw_is_the_release_the_testbed_runs_from_ghcr():
    image = inventory.load_defaults()["images"]["versitygw"]
    assert image == f"ghcr.io/versity/versitygw:{svc.VERSITYGW_VERSION}"


def test_the_webui_is_told_the_inventorys_nodeport_address(write_inventory):
    inv = inventory.load(str(write_inventory("hosts: {address: 192.168.49.2}\nnodeports: {minio-console: 31082}\n")))
    args = find(render_minio(inv), "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--webui-gateways") + 1] == "http://192.168.49.2:31082"


# -- MinIO ------------------------------------------------------------------------------------

def test_minio_comes_from_quay_with_its_own_probes_and_a_notice(write_inventory):
    inv = inventory_with(write_inventory, "minio")
    objects = render_minio(inv)
    sts = find(objects, "StatefulSet", "minio")
    spec = sts["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert "initContainers" not in spec
    assert re.fullmatch(r"quay\.io/minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", container["image"])
    assert container["args"] == ["server", "/data", "--console-address", ":9001"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/minio/health/live"
    assert {e["name"] for e in container["env"]} == {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    notice = sts["metadata"]["annotations"][NOTICE]
    assert "archived upstream" in notice and "quay.io" in notice and "no fixes" in notice
    assert "minio.server: versitygw" in notice
    assert "annotations" not in find(objects, "Service", "minio-console")["metadata"]


# -- the rendered objects on docker-desktop ----------------------------------------------------

def test_minio_statefulset_volume_probes_and_limits(docker_desktop):
    """The default object store, versitygw, as docker-desktop renders it."""
    objects = render("minio", docker_desktop)
    sts = by_kind(objects, "StatefulSet")["minio"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"ghcr\.io/versity/versitygw:v\d+\.\d+\.\d+", container["image"])
    assert container["args"][-2:] == ["posix", "/data/versitygw"]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/_/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/_/health"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env == {"ROOT_ACCESS_KEY": {"name": "minio-credentials", "key": "root-user"},
                   "ROOT_SECRET_KEY": {"name": "minio-credentials", "key": "root-password"}}
    services = by_kind(objects, "Service")
    assert services["minio"]["spec"]["type"] == "ClusterIP"
    assert services["minio"]["spec"]["ports"][0]["port"] == 9000


def bucket_job(inv: inventory.Inventory, script: str | None = None) -> dict:
    module = role.load("minio").module
    namespace = inv["namespaces"]["platform"]
    if script is None:
        return by_kind(render("minio", inv), "Job").popitem()[1]
    return module.bucket_job(namespace, inv.vars, script)


def test_bucket_job_makes_the_datalake_and_its_prefixes(docker_desktop):
    job = bucket_job(docker_desktop)
    assert "ttlSecondsAfterFinished" not in job["spec"], "a vanished Job would be re-created on every run"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"public\.ecr\.aws/aws-cli/aws-cli:2\.\d+\.\d+", container["image"])
    env = {e["name"]: e for e in container["env"]}
    assert env["BUCKET"]["value"] == "datalake"
    assert env["PREFIXES"]["value"].split() == ["raw/", "processed/", "curated/", "notebooks/"]
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "minio-credentials"
    script = container["command"][-1]
    assert "s3api head-bucket" in script and "s3api create-bucket" in script and ".keep" in script


def test_bucket_job_name_follows_its_script(docker_desktop):
    job = bucket_job(docker_desktop)
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    same = bucket_job(docker_desktop, script)
    changed = bucket_job(docker_desktop, script + "echo changed\n")
    assert same["metadata"]["name"] == job["metadata"]["name"]
    assert changed["metadata"]["name"] != job["metadata"]["name"]
    assert re.fullmatch(r"minio-buckets-[0-9a-f]{8}", changed["metadata"]["name"])


class Absent:
    """A cluster where nothing exists yet: status then lists every object as missing."""

    context, server = "test", "https://127.0.0.1:6443"

    def get(self, obj):
        return None


def status_text(inv: inventory.Inventory) -> str:
    out = io.StringIO()
    minio = next(r for r in playbook.load("up").roles if r.name == "minio")
    found = status.collect(Absent(), inv, [minio])
    assert found["healthy"] is False
    status.show(found, inv, Reporter(out))
    return out.getvalue()


def test_status_says_minio_is_archived_and_how_to_switch(write_inventory):
    inv = inventory_with(write_inventory, "minio")
    text = status_text(inv)
    notices = text[text.index("\nnotices"):]
    assert str(inv.path.name) in notices.splitlines()[1]
    assert "StatefulSet data-platform/minio: MinIO community edition is archived upstream" in notices
    assert "set minio.server: versitygw in the inventory" in notices
    assert re.search(r"^  minio-console +http://localhost:30082 +minio-console\.data-platform\.svc\.cluster\.local:\d+ "
                     r"+minioadmin +missing +minioadmin$", text, re.MULTILINE)  # the lab inventory shows its password


def test_status_of_versitygw_has_no_notice_and_shows_the_webui_path(write_inventory):
    text = status_text(inventory_with(write_inventory, "versitygw"))
    assert "notices" not in text and "archived" not in text
    assert re.search(r"^  minio-console +http://localhost:30082/ui/ ", text, re.MULTILINE)


# -- the images and the service testbed ----------------------------------------------------------

def test_the_user_image_and_the_testbed_ship_the_same_aws_cli():
    requirements = (ROOT / "files/images/jupyterhub-dbt/requirements.txt").read_text()
    pins = dict(line.split("==") for line in requirements.splitlines() if line and not line.startswith("#"))
    assert pins["awscli"] == svc.AWSCLI_VERSION


def test_the_testbed_runs_the_rendered_server_and_job(server, write_inventory):
    path = inventory_with(write_inventory, server).path
    s3 = config_from_render(str(path))["s3"]
    assert s3["server"] == server
    job = s3["bucket_job"]
    assert job["command"] == ["/bin/sh", "-c", (ROOT / "files/minio/buckets.sh").read_text()]
    assert job["env"]["AWS_ACCESS_KEY_ID"] == s3["access_key"] == "minioadmin"
    assert job["env"]["HOME"] == "/tmp" and job["volumes"] == {"/tmp": "emptyDir"}
    assert [(p["port"], p["target_port"], p.get("node_port")) for p in s3["service"]] == [(9000, 9000, None), (9001, 9001, 30082)]
    assert {p["host"] for p in s3["service"]} == {"minio.data-platform.svc.cluster.local"}
    if server == "versitygw":
        assert s3["env"]["ROOT_SECRET_KEY"] == "minioadmin"
        args, data = svc._versitygw_args(s3["args"], "127.42.1.10", s3["paths"], Path("/run/s3"))
        assert args[:4] == ["--port", "127.42.1.10:9000", "--port", "127.42.1.10:9001"]
        assert data == Path("/run/s3/data/versitygw") and args[-1] == str(data)
        assert [c["command"] for c in s3["init_containers"]] == [["mkdir", "-p", "/data/versitygw"]]
    else:
        assert s3["init_containers"] == [] and s3["env"]["MINIO_ROOT_PASSWORD"] == "minioadmin"


# the bucket Job's script against the real versitygw, where the testbed has built it

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def versitygw_server(tmp_path):
    binary = component_dir("versitygw", svc.VERSITYGW_VERSION) / "bin" / "versitygw"
    aws = component_dir("awscli", svc.AWSCLI_VERSION) / "bin" / "aws"
    if not binary.exists() or not aws.exists():
        pytest.skip("versitygw and the AWS CLI are not cached: python -m testbed.services install --only s3")
    data, meta = tmp_path / "data", tmp_path / "meta"
    data.mkdir()
    meta.mkdir()
    port = free_port()
    args = [str(binary), "--port", f"127.0.0.1:{port}", "--health", "/_/health", "--quiet", "posix"]
    if not svc._xattr_ok(data):
        args += ["--sidecar", str(meta)]
    env = {"PATH": "/usr/bin:/bin", "ROOT_ACCESS_KEY": "lab-user", "ROOT_SECRET_KEY": "lab-secret"}
    proc = subprocess.Popen([*args, str(data)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield {"endpoint": f"http://127.0.0.1:{port}", "aws": aws, "data": data}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_bucket_script_makes_the_bucket_on_real_versitygw_twice(versitygw_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{versitygw_server['aws'].parent}:/usr/bin:/bin", "HOME": str(home),
           "S3_ENDPOINT": versitygw_server["endpoint"], "S3_SERVER": "versitygw", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "lab-user", "AWS_SECRET_ACCESS_KEY": "lab-secret",
           "BUCKET": "datalake", "PREFIXES": "raw/ processed/ curated/ notebooks/"}
    script = (ROOT / "files/minio/buckets.sh").read_text()
    for _ in range(2):  # the second run (a re-created Job) finds everything in place
        t0 = time.monotonic()
        done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "bucket datalake ready with prefixes: raw/ processed/ curated/ notebooks/" in done.stdout
        assert time.monotonic() - t0 < 60
    made = sorted(str(p.relative_to(versitygw_server["data"])) for p in versitygw_server["data"].rglob(".keep"))
    assert made == ["datalake/curated/.keep", "datalake/notebooks/.keep", "datalake/processed/.keep", "datalake/raw/.keep"]
