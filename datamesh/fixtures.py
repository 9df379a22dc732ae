"""The pytest plugin behind `invoke verify` (`-p datamesh.fixtures`): the fixtures roles/<name>/verify.py
use, and each report's component, failure sentence and next step.

Fixtures (session-wide, made on first use):
    host       testinfra's own: the user's machine, hosts.nodeports (local://, or ssh:// via --hosts)
    nodeport   nodeport("trino", "/v1/info") -> a URL that reaches that NodePort the way the user's
               machine does (datamesh/nodeports.py)
    pod        pod("trino") -> a testinfra host inside the Ready pod behind that service: testinfra's
               kubectl:// backend, so `kubectl exec` through the API server, with the inventory's context
    reach      datamesh.endpoints.Endpoints: a service through a port-forward of the API; logins from Secrets
    inventory, cluster, rendered (the test's role's objects as `up` renders them)

Markers: `next_step("...")` gives one check its own next step instead of its module's NEXT_STEP. A
component the inventory declares not run (`verify.not_run`, the testbed's Grafana) makes the
fixtures asked for it skip with the inventory's reason; nothing else is ever skipped but by a
check's own pytest.skip with its reason.

Each process (and each pytest-xdist worker) makes its own inventory and connection from the
command line options. The checks `invoke up` runs after each role are datamesh/live_checks.py's,
without pytest; datamesh/common_checks.py runs the same functions here.
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest

from datamesh.errors import DatameshError

_loaded: dict = {}  # this process's inventory and rendered roles


def pytest_addoption(parser) -> None:
    group = parser.getgroup("datamesh")
    group.addoption("--datamesh-inventory", default=None, help="the inventory whose platform is checked")
    group.addoption("--datamesh-roles", default="", help="comma-separated roles the common checks run for")


def pytest_configure(config) -> None:
    _loaded.clear()  # a new run in the same process (`up`, role after role) may check another inventory
    config.addinivalue_line("markers", "next_step(text): what to do when this check fails")
    config.addinivalue_line("markers", "applies(predicate): a common check only for roles whose rendered objects it accepts")


def loaded_inventory(config):
    """The inventory checked: `up`'s own, or the one --datamesh-inventory names (loaded once)."""
    if "inventory" not in _loaded:
        from datamesh import inventory as inventories

        _loaded["inventory"] = inventories.load(config.getoption("datamesh_inventory"))
    return _loaded["inventory"]


def rendered_role(config, name: str) -> list[dict]:
    key = ("rendered", name)
    if key not in _loaded:
        from datamesh import role as roles

        _loaded[key] = roles.load(name).render(loaded_inventory(config).vars)
    return _loaded[key]


def pytest_collection_modifyitems(config, items) -> None:
    """Leave out a common check for the roles it does not apply to (no pods, no volumes, no NodePorts),
    so the table holds only checks that mean something."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("applies")
        role = getattr(item, "callspec", None) and item.callspec.params.get("role")
        applies = not (marker and role) or marker.args[0](rendered_role(config, role))
        (keep if applies else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_generate_tests(metafunc) -> None:
    if "role" in metafunc.fixturenames:
        roles = [r for r in metafunc.config.getoption("datamesh_roles").split(",") if r]
        metafunc.parametrize("role", roles, ids=roles, scope="session")


def component(item) -> str:
    """The role a check belongs to: its verify.py's folder, or the `role` it is parametrized with."""
    callspec = getattr(item, "callspec", None)
    if callspec and "role" in callspec.params:
        return callspec.params["role"]
    return file_component(Path(str(item.path)))


def file_component(path: Path) -> str:
    """roles/<name>/verify.py belongs to <name>; any other checks file to its own name."""
    return path.parent.name if path.name == "verify.py" else path.stem


def failure_sentence(excinfo) -> str:
    """A failure in one line: pytest.fail's or an assertion's own message, a DatameshError's sentence,
    else the exception's type and first line (the traceback stays in the JUnit file)."""
    error = excinfo.value
    if isinstance(error, pytest.fail.Exception):
        text = str(error.msg or "")
    elif isinstance(error, AssertionError):
        text = str(error).split("\nassert ")[0]
    elif isinstance(error, DatameshError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines()
    return lines[0] if lines else f"{type(error).__name__} without a message"


def next_step(item, inventory) -> str:
    marker = item.get_closest_marker("next_step")
    text = marker.args[0] if marker else getattr(item.module, "NEXT_STEP", "")
    if not text:
        return "see `invoke status`, then run `invoke up` for this component"
    return text.format(**inventory["namespaces"]) if inventory is not None else text


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    item.user_properties.append(("component", component(item)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure's sentence and next step go on the item too, so its later reports (teardown, which
    JUnit writes properties from) carry them as well."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and not any(name == "message" for name, _ in item.user_properties):
        found = [("message", failure_sentence(call.excinfo)), ("next", next_step(item, loaded_inventory(item.config)))]
        item.user_properties.extend(found)
        report.user_properties.extend(found)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def inventory(request):
    return loaded_inventory(request.config)


@pytest.fixture(scope="session")
def cluster(inventory):
    from datamesh.cluster import Cluster

    made = Cluster(inventory)
    made.ping()
    return made


@pytest.fixture(scope="session")
def reach(cluster, inventory):
    from datamesh.endpoints import Endpoints

    return Endpoints(cluster, inventory)


@pytest.fixture(scope="session")
def not_run(inventory):
    """Skip the calling check when the inventory says `name` does not run there (the testbed's Grafana)."""
    declared = {name: why for name, why in inventory["verify"]["not_run"].items() if why}

    def check(name: str) -> None:
        if name in declared:
            pytest.skip(f"{name} is not run here: {declared[name]} (verify.not_run in {inventory.path.name})")
    return check


@pytest.fixture(scope="session")
def nodeports(inventory):
    from datamesh.nodeports import NodePorts

    opened = NodePorts(inventory)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def nodeport(nodeports, not_run):
    def url(name: str, path: str = "") -> str:
        not_run(name)
        return nodeports.url(name, path)
    return url


@pytest.fixture(scope="session")
def pod(reach, cluster, not_run):
    """pod("trino") -> a testinfra host in the Ready pod behind that service (its first container)."""
    import testinfra

    hosts: dict = {}

    def host(name: str, container: str | None = None):
        not_run(name)
        if shutil.which("kubectl") is None:
            pytest.fail("the in-cluster checks run `kubectl exec` (testinfra's kubectl backend) and no kubectl is on "
                        "PATH: install kubectl (https://kubernetes.io/docs/tasks/tools/) or leave them out with -k")
        key = (name, container)
        if key not in hosts:
            found, _ = reach.pod(name)
            query = {"namespace": reach.namespace(name),
                     "container": container or found["spec"]["containers"][0]["name"],
                     "kubeconfig": str(cluster.kubeconfig), "context": cluster.context}
            hosts[key] = testinfra.get_host(f"kubectl://{found['metadata']['name']}?{urllib.parse.urlencode(query)}")
        return hosts[key]
    return host


@pytest.fixture
def rendered(request):
    """The objects the test's role renders for this inventory."""
    name = request.getfixturevalue("role") if "role" in request.fixturenames else component(request.node)
    return rendered_role(request.config, name)
