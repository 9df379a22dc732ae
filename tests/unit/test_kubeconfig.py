"""How datamesh reads a kube context (datamesh/kubeconfig.py) and Kubernetes quantities
(datamesh/kube.py), without the official client: the shapes Docker Desktop, kind, k3d, minikube
and remote clusters write, and what the API server refuses."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from datamesh import kubeconfig
from datamesh.errors import DatameshError
from datamesh.kube import quantity


def write(tmp_path: Path, user: dict, cluster: dict | None = None) -> tuple[Path, dict]:
    data = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443/", "certificate-authority": "pki/ca.crt"}}],
            "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": user}]}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(data))
    return path, kubeconfig.contexts(path)[0]


def test_client_certificate_files_are_relative_to_the_kubeconfig_folder(tmp_path):
    path, data = write(tmp_path, {"client-certificate": "pki/admin.crt", "client-key": "/abs/admin.key"})
    login = kubeconfig.login(path, data, "lab")
    assert login.server == "https://127.0.0.1:6443"
    assert login.ca_file == str(tmp_path / "pki/ca.crt") and login.cert_file == str(tmp_path / "pki/admin.crt")
    assert login.key_file == "/abs/admin.key" and login.verify and login.headers() == {}


def test_certificate_data_is_written_to_private_files(tmp_path):
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    encoded = base64.b64encode(pem).decode()
    path, data = write(tmp_path, {"client-certificate-data": encoded, "client-key-data": encoded},
                       {"server": "https://kubernetes.docker.internal:6443", "certificate-authority-data": encoded})
    login = kubeconfig.login(path, data, "lab")
    for name in (login.ca_file, login.cert_file, login.key_file):
        assert Path(name).read_bytes() == pem and Path(name).stat().st_mode & 0o077 == 0


def test_a_token_or_a_token_file_goes_in_the_authorization_header(tmp_path):
    path, data = write(tmp_path, {"token": "abc"}, {"server": "https://h:6443", "insecure-skip-tls-verify": True,
                                                    "tls-server-name": "kubernetes", "proxy-url": "http://proxy:3128"})
    login = kubeconfig.login(path, data, "lab")
    assert login.headers() == {"authorization": "Bearer abc"}
    assert (login.verify, login.tls_server_name, login.proxy) == (False, "kubernetes", "http://proxy:3128")
    token = tmp_path / "token"
    token.write_text("first\n")
    path, data = write(tmp_path, {"tokenFile": str(token)})
    login = kubeconfig.login(path, data, "lab")
    token.write_text("rotated\n")  # projected tokens are rotated under a running process
    assert login.headers() == {"authorization": "Bearer rotated"}


def test_an_exec_plugin_goes_to_the_official_loader(tmp_path):
    path, data = write(tmp_path, {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "printf",
                                           "args": ['{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
                                                    '"status":{"token":"from-exec"}}'], "interactiveMode": "Never"}},
                       {"server": "https://h:6443"})
    login = kubeconfig.login(path, data, "lab")
    assert login.server == "https://h:6443" and login.headers() == {"authorization": "Bearer from-exec"}


def test_a_context_naming_a_missing_user_is_one_sentence(tmp_path):
    path, data = write(tmp_path, {"token": "abc"})
    data["contexts"][0]["context"]["user"] = "nobody"
    with pytest.raises(DatameshError, match=r"kube context 'lab' names user 'nobody', which .*config does not define"):
        kubeconfig.login(path, data, "lab")


def test_an_unreadable_kubeconfig_is_one_sentence(tmp_path):
    path = tmp_path / "config"
    path.write_text("contexts: [unclosed")
    with pytest.raises(DatameshError, match=r"cannot read kubeconfig .*config \("):
        kubeconfig.contexts(path)


@pytest.mark.parametrize("text, value", [
    ("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")), ("1e3", 1000),
    ("1k", 1000), (".5", Decimal("0.5")), ("1.", 1), ("+1Ki", 1024), ("3E2", 300), (2, 2), ("100n", Decimal("1e-7")),
    ("1E", 10**18), ("0E", 0), ("1Ei", 2**60), ("2e-3", Decimal("0.002")),
])
def test_quantities_read_as_the_api_server_reads_them(text, value):
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1.5.5", "1 Gi", "Gi", "", "1ki", "1GB", "1e", True, None, "１"])
def test_what_the_api_server_refuses_is_not_a_quantity(text):
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity(text)
