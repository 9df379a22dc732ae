"""JupyterHub runs the role's jupyterhub_config.py with the hub container's env, behind the proxy
pod's configurable-http-proxy command, on NodePort 30080."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from datamesh import inventory, probes
from tests.e2e.conftest import INVENTORY


@pytest.fixture(scope="module")
def hub_url(config) -> str:
    public = next(s for s in config["jupyterhub"]["proxy"]["service"] if s.get("node_port"))
    assert public["node_port"] == 30080
    return f"http://127.0.0.1:{public['node_port']}"


def test_admin_logs_in_with_the_lab_password_through_the_proxy(hub_url):
    lab = inventory.load(INVENTORY).vars["credentials"]
    user, password = lab["users"]["jupyterhub"], lab["lab_passwords"]["jupyterhub"]
    assert (user, password) == ("admin", "admin")
    jar = probes.hub_login(hub_url, user, password)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{hub_url}/hub/home", timeout=30) as r:
        assert r.status == 200 and r.url.endswith("/hub/home")


def test_a_wrong_password_is_refused(hub_url):
    with pytest.raises(probes.ProbeError, match="JupyterHub at http://127.0.0.1:30080 .*admin"):
        probes.hub_login(hub_url, "admin", "not-the-password")


def test_admin_server_is_reached_through_the_proxy(hub_url):
    """The hub adds the user's route to the proxy through proxy-api with the shared token."""
    jar = probes.hub_login(hub_url, "admin", "admin")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{hub_url}/hub/spawn", timeout=60) as r:
        assert r.status == 200
    # as a browser: /user/admin/lab -> the hub's OAuth authorize -> oauth_callback -> the lab page
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with opener.open(f"{hub_url}/user/admin/lab", timeout=10) as r:
                if r.status == 200 and b"JupyterLab" in r.read():
                    break
        except OSError:
            pass
        time.sleep(1)
    else:
        pytest.fail("the single-user server of admin did not serve JupyterLab through the proxy within 120s")
    with opener.open(f"{hub_url}/user/admin/api/status", timeout=10) as r:
        assert r.status == 200 and "started" in json.loads(r.read())
