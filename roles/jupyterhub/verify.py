"""JupyterHub's checks: the login page on its NodePort, a real login with the inventory's admin, a
wrong password refused, the hub reaching the proxy's API with its token, and the hub's pod
resolving and reaching that API."""

import json

import pytest

from datamesh import probes
from datamesh.manifests import fqdn

NEXT_STEP = "read `kubectl -n {jupyterhub} logs deploy/hub --tail 50` (a hub that cannot use the proxy's API stops), " \
            "then run `invoke up --only jupyterhub`"


@pytest.fixture(scope="module")
def hub(nodeport):
    return nodeport("jupyterhub")


@pytest.fixture(scope="module")
def admin(reach):
    return reach.login("jupyterhub")


def test_the_login_page_is_served(hub):
    status, body = probes.http_get(f"{hub}/hub/login")
    assert status == 200, f"JupyterHub's login page at {hub}/hub/login answered HTTP {status}"
    assert b'name="username"' in body, f"{hub}/hub/login answered a page without JupyterHub's login form"


def test_the_admin_logs_in_with_the_inventory_login(hub, admin):
    probes.hub_login(hub, admin.user, admin.password)


def test_a_wrong_password_is_refused(hub, admin):
    try:
        probes.hub_login(hub, admin.user, admin.password + "-wrong")
    except probes.LoginRefused:  # only a refusal passes: a hub that does not answer fails with its own sentence
        return
    pytest.fail(f"JupyterHub at {hub} accepted {admin.user} with a wrong password: check c.DummyAuthenticator.password "
                "in files/jupyterhub/jupyterhub_config.py and the Secret jupyterhub-credentials")


def test_the_hub_reaches_the_proxy_api_with_its_token(hub, admin):
    jar = probes.hub_login(hub, admin.user, admin.password)
    status, body = probes.hub_api(hub, jar, "/proxy")
    assert status == 200, f"the hub could not read the proxy's routing table (GET /hub/api/proxy: HTTP {status})"
    assert "/" in json.loads(body), "the proxy's routing table has no default route to the hub"


def test_its_pod_resolves_and_reaches_the_proxy_api(pod, inventory):
    name = fqdn("proxy-api", inventory["namespaces"]["jupyterhub"])
    inside = pod("jupyterhub-hub")
    assert inside.addr(name).is_resolvable, f"the hub's pod cannot resolve {name}: is cluster DNS (CoreDNS) running?"
    assert inside.addr(name).port(8001).is_reachable, f"the hub's pod resolves {name} but cannot connect to port 8001"
