"""The cluster testbed's binaries, built from the Go module proxy and cached by version:

    kubernetes-v1.37.2/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
    kubernetes-v1.37.2/src/go.mod    the wrapper module it was built from (assets/gomod/kubernetes)
    kubernetes-v1.37.2/etcd.version  the etcd release it pins, so a warm start needs no Go
    etcd-v3.7.0/bin/etcd             (assets/gomod/etcd)
    kwok-v0.8.0/bin/{kwok,kwokctl}

kube-apiserver, kube-controller-manager, kube-scheduler and kubectl at one Kubernetes release,
etcd at the version that release pins (its build/dependencies.yaml), and KWOK's kwok and kwokctl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from string import Template

import yaml

from testbed.common import ASSETS, TestbedError, build_atomically, cache_root, component_dir, go_env, logger

# The newest release Go 1.26 builds; v1.36.3 and v1.34.4 work too (KWOK v0.8.0 lists 1.36 as its newest tested).
K8S_VERSION = os.environ.get("DATAMESH_TESTBED_KUBERNETES", "v1.37.2")
KWOK_VERSION = os.environ.get("DATAMESH_TESTBED_KWOK", "v0.8.0")
K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

log = logger("testbed")


def go(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, capture: bool = False) -> str:
    cmd = [shutil.which("go") or "go", *args]
    proc = subprocess.run(
        cmd, cwd=cwd, env=env or go_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None, text=True,
    )
    if proc.returncode != 0:
        raise TestbedError(f"`go {' '.join(args)}` failed (exit {proc.returncode}); see the output above")
    return proc.stdout or ""


def module_info(path: str, version: str) -> dict:
    """`go mod download -json` for one module: GoMod, Dir, Info paths."""
    cwd = cache_root() / "go"
    cwd.mkdir(parents=True, exist_ok=True)
    return json.loads(go("mod", "download", "-json", f"{path}@{version}", cwd=cwd, capture=True))


def parse_replaces(gomod: str) -> list[tuple[str, str]]:
    """(module, local path) for every `replace X => ./path` or `../path` in a go.mod."""
    pattern = r"^\s*(?:replace\s+)?(\S+)\s+=>\s+(\.\.?/\S+)\s*$"
    return re.findall(pattern, gomod, re.M)


def parse_requires(gomod: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$", gomod, re.M))


def go_directive(gomod: str) -> str:
    return re.search(r"^go\s+(\S+)", gomod, re.M).group(1)


def render_gomod(name: str, **values: str) -> str:
    return Template((ASSETS / "gomod" / name / "go.mod.tmpl").read_text()).substitute(values)


def cached(name: str, version: str, binaries: tuple[str, ...]) -> Path | None:
    bin_dir = component_dir(name, version) / "bin"
    if all((bin_dir / b).is_file() for b in binaries):
        return bin_dir
    return None


def ensure(name: str, version: str, binaries: tuple[str, ...], build_fn, timings: dict) -> Path:
    """The cached bin folder of name-version, built with build_fn(tmp) first if it is missing."""
    bin_dir = cached(name, version, binaries)
    if bin_dir:
        return bin_dir
    if not shutil.which("go"):
        raise TestbedError(f"{name} {version} is not in the cache and Go is not on PATH: install Go 1.26+")
    state = {}

    def build(tmp: Path) -> None:
        log(f"building {name} {version} (cold; this takes a while on 2 cores)")
        state["start"] = time.monotonic()
        build_fn(tmp)

    final = build_atomically(component_dir(name, version), build, expect=tuple(f"bin/{b}" for b in binaries))
    if "start" in state:
        timings[f"build {name} {version}"] = time.monotonic() - state["start"]
        log(f"built {name} {version} in {timings[f'build {name} {version}']:.0f}s")
    return final / "bin"


def staging_version(version: str) -> str:
    """k8s.io/kubernetes v1.34.4 publishes its staging modules as v0.34.4."""
    if not version.startswith("v1."):
        raise TestbedError(f"unexpected Kubernetes version {version}, want v1.X.Y")
    return "v0." + version[len("v1."):]


def etcd_version(k8s_version: str = K8S_VERSION) -> str:
    """The etcd release this Kubernetes release is built and tested with.

    Read from the release's build/dependencies.yaml, and remembered in the
    kubernetes cache entry so a warm start needs no Go toolchain.
    """
    remembered = component_dir("kubernetes", k8s_version) / "etcd.version"
    if remembered.is_file():
        return remembered.read_text().strip()
    info = module_info("k8s.io/kubernetes", k8s_version)
    deps = yaml.safe_load((Path(info["Dir"]) / "build" / "dependencies.yaml").read_text())
    for dep in deps["dependencies"]:
        if dep["name"] == "etcd":
            return "v" + str(dep["version"]).lstrip("v")
    raise TestbedError(f"k8s.io/kubernetes {k8s_version} names no etcd in build/dependencies.yaml")


def kubernetes_gomod(version: str) -> str:
    info = module_info("k8s.io/kubernetes", version)
    upstream = Path(info["GoMod"]).read_text()
    staged = staging_version(version)
    replaces = [
        f"\t{mod} => {mod} {staged}"
        for mod, path in parse_replaces(upstream)
        if path.startswith("./staging/src/")
    ]
    if not replaces:
        raise TestbedError(f"k8s.io/kubernetes {version} go.mod has no staging replaces; layout changed?")
    godebug = "".join(f"\n{line}\n" for line in re.findall(r"^godebug\s.*$", upstream, re.M))
    return render_gomod(
        "kubernetes", go=go_directive(upstream), godebug=godebug, version=version,
        replaces="\n".join(replaces),
    )


def kubernetes_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    info = json.loads(Path(module_info("k8s.io/kubernetes", version)["Info"]).read_text())
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "",  # unknown from the module proxy; user agents then say kubernetes/unknown
        "gitTreeState": "clean",
        "buildDate": info["Time"][:19] + "Z",  # release time: reproducible
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def build_kubernetes(version: str = K8S_VERSION, timings: dict | None = None) -> Path:
    def build(tmp: Path) -> None:
        src = tmp / "src"
        src.mkdir()
        (src / "go.mod").write_text(kubernetes_gomod(version))
        packages = [f"k8s.io/kubernetes/cmd/{c}" for c in K8S_COMMANDS]
        go("build", "-mod=mod", "-o", str(tmp / "bin") + "/", "-ldflags", kubernetes_ldflags(version),
           *packages, cwd=src)
        (tmp / "etcd.version").write_text(etcd_version(version) + "\n")

    return ensure("kubernetes", version, K8S_COMMANDS, build, timings if timings is not None else {})


def etcd_gomod(version: str) -> str:
    info = module_info("go.etcd.io/etcd/server/v3", version)
    upstream = Path(info["GoMod"]).read_text()
    requires = parse_requires(upstream)
    # Mirror the in-repo replaces (../api, ../pkg, ...) with the published modules;
    # the ./FORBIDDEN_DEPENDENCY guards point at nothing and are left out.
    replaces = [
        f"\t{mod} => {mod} {requires.get(mod, version)}"
        for mod, path in parse_replaces(upstream)
        if path.startswith("../")
    ]
    return render_gomod("etcd", go=go_directive(upstream), version=version, replaces="\n".join(replaces))


def build_etcd(version: str | None = None, timings: dict | None = None) -> Path:
    version = version or etcd_version()

    def build(tmp: Path) -> None:
        src = tmp / "src"
        src.mkdir()
        (src / "go.mod").write_text(etcd_gomod(version))
        go("build", "-mod=mod", "-o", str(tmp / "bin" / "etcd"), "-ldflags", "-s -w",
           "go.etcd.io/etcd/server/v3", cwd=src)

    return ensure("etcd", version, ("etcd",), build, timings if timings is not None else {})


def build_kwok(version: str = KWOK_VERSION, timings: dict | None = None) -> Path:
    def build(tmp: Path) -> None:
        env = go_env()
        env["GOBIN"] = str(tmp / "bin")
        go("install", "-ldflags", "-s -w",
           f"sigs.k8s.io/kwok/cmd/kwok@{version}", f"sigs.k8s.io/kwok/cmd/kwokctl@{version}",
           cwd=cache_root() / "go", env=env)

    return ensure("kwok", version, ("kwok", "kwokctl"), build, timings if timings is not None else {})


def build(timings: dict | None = None) -> dict[str, Path]:
    """Build (or find cached) every binary the testbed needs; returns their bin dirs."""
    timings = timings if timings is not None else {}
    return {
        "kubernetes": build_kubernetes(timings=timings),
        "etcd": build_etcd(timings=timings),
        "kwok": build_kwok(timings=timings),
    }
