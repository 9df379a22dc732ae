"""The object store's checks: the data lake's bucket there for the root login (through a
port-forward of the Kubernetes API), and its console answering on its NodePort."""


from datamesh import probes
from datamesh.manifests import URL_PATH

NEXT_STEP = "read `kubectl -n {platform} logs deploy/minio --tail 50`; a missing bucket comes back with " \
            "`invoke up --only minio` (its bucket Job) and its files with `invoke seed --only lake,hive,dbt,docs`"


def test_the_lake_bucket_is_there_for_the_root_login(reach, inventory):
    bucket = inventory["minio"]["bucket"]
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        probes.s3_bucket_listed(f"{host}:{port}", login.user, login.password, bucket)


def test_the_console_answers_on_its_nodeport(nodeport, rendered):
    console = next(o for o in rendered if o["kind"] == "Service" and o["metadata"]["name"] == "minio-console")
    path = (console["metadata"].get("annotations") or {}).get(URL_PATH, "/")
    url = nodeport("minio-console", path)
    status, body = probes.http_get(url)
    assert status == 200, f"the object store's console at {url} answered HTTP {status}"
    assert b"<html" in body.lower(), f"the object store's console at {url} answered something other than a web page"
