"""Baseline: ansible-playbook with kubernetes.core.k8s applying the objects `up` applies.

    python -m benchmarks.ansible --manifests DIR [--wait]

Ansible is not ours to ship: it lives in its own virtual environment, cached by version under
testbed.common.cache_root()/benchmarks, with the kubernetes client it needs pinned there. The
playbook applies server-side as datamesh does (field manager `datamesh`, forced conflicts), so a
run after `up` is a no-op for both. benchmarks.converge imports venv, write_playbook and run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from testbed.common import build_atomically, cache_root

# The newest ansible for Python 3.11 (13 needs 3.12); it bundles kubernetes.core 6.2.0, whose
# server_side_apply option (since 2.3.0) sends an apply PATCH. kubernetes.core asks for
# kubernetes>=24.2.0: the newest, 37.0.2, since nothing else in that environment caps it.
ANSIBLE_VERSION = "12.3.0"
ANSIBLE_CORE_VERSION = "2.19.14"  # ansible 12.3.0 asks for ~=2.19.5: the newest 2.19 then
KUBERNETES_VERSION = "37.0.2"
WAIT_TIMEOUT = 600
RECAP = re.compile(r"^\S+\s*:\s*(ok=\d+.*)$", re.M)


def venv() -> Path:
    """The ansible-playbook of a virtual environment with the pinned ansible and kubernetes."""
    final = cache_root() / "benchmarks" / f"ansible-{ANSIBLE_VERSION}"

    def build(tmp: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--prompt", final.name, str(tmp)], check=True)
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"ansible=={ANSIBLE_VERSION}", f"ansible-core=={ANSIBLE_CORE_VERSION}",
                        f"kubernetes=={KUBERNETES_VERSION}"], check=True)
        for script in (tmp / "bin").iterdir():  # shebangs and activate scripts name tmp, not final
            if script.is_file() and not script.is_symlink() and str(tmp).encode() in script.read_bytes():
                script.write_bytes(script.read_bytes().replace(str(tmp).encode(), str(final).encode()))

    return build_atomically(final, build, expect=("bin/ansible-playbook",)) / "bin" / "ansible-playbook"


def segments(documents: list[dict]) -> list[tuple[bool, list[dict]]]:
    """Consecutive runs of documents, Jobs apart: their readiness is a condition, Complete."""
    runs: list[tuple[bool, list[dict]]] = []
    for doc in documents:
        job = doc.get("kind") == "Job"
        if runs and runs[-1][0] == job:
            runs[-1][1].append(doc)
        else:
            runs.append((job, [doc]))
    return runs


def write_playbook(folder: Path, manifests_dir: Path, wait: bool) -> Path:
    """A playbook applying every document of manifests_dir's YAML files, in file order.

    One k8s task takes all the documents through `src` (a file of them, in order; with `wait`, one
    task per run of Jobs or non-Jobs). Each task is a Python process that imports the kubernetes
    client before its first request, about 1.5 s: `loop` pays it per object (8 namespaces objects:
    15 s against 1.5 s), a task per file per file (no-op: 16 s against 6 s). `definition`, inline
    or from a lookup, was no faster (the controller then templates 87 objects), and `src` is not
    templated at all, so the `{{` in JupyterHub's ConfigMaps stays. The module applies, then waits
    for, each object in turn: its readiness for Deployments, StatefulSets, DaemonSets and Pods,
    Complete for Jobs, existence otherwise; polled every second (wait_sleep, 5 by default).
    """
    folder.mkdir(parents=True, exist_ok=True)
    documents = [doc for path in sorted(p for p in manifests_dir.iterdir() if p.suffix in (".yaml", ".yml"))
                 for doc in yaml.safe_load_all(path.read_text()) if doc]
    tasks = []
    for index, (job, docs) in enumerate(segments(documents) if wait else [(False, documents)]):
        src = folder / f"objects-{index}.yaml"
        src.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        task = {"state": "present", "src": str(src), "apply": True,
                "server_side_apply": {"field_manager": "datamesh", "force_conflicts": True}}
        if wait:
            task.update(wait=True, wait_sleep=1, wait_timeout=WAIT_TIMEOUT)
            if job:
                task["wait_condition"] = {"type": "Complete", "status": "True"}
        tasks.append({"name": f"apply {src.name} ({len(docs)} objects)", "kubernetes.core.k8s": task})
    play = [{"name": "apply", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    playbook = folder / "playbook.yaml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    return playbook


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP counts (ok, changed, failed, ...) of a run's output."""
    match = RECAP.search(output.split("PLAY RECAP", 1)[-1])
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))} if match else {}


def command(playbook: Path, kubeconfig: Path, env: dict) -> tuple[list[str], dict]:
    """The ansible-playbook command line and environment that run the playbook on localhost against kubeconfig."""
    binary = venv()
    python = binary.parent / "python"
    site = next((binary.parent.parent / "lib").glob("python3*/site-packages"))
    config = playbook.parent / "ansible.cfg"  # so no ansible.cfg of the caller's applies
    config.write_text("[defaults]\n")
    env = dict(env, K8S_AUTH_KUBECONFIG=str(kubeconfig), ANSIBLE_COLLECTIONS_PATH=str(site),
               ANSIBLE_CONFIG=str(config), ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_DISPLAY_OK_HOSTS="0", ANSIBLE_DISPLAY_SKIPPED_HOSTS="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_PIPELINING="1")
    return [str(binary), "-i", "localhost,", "-e", f"ansible_python_interpreter={python}", str(playbook)], env


def run(playbook: Path, kubeconfig: Path, env: dict) -> tuple[float, str]:
    """Run the playbook on localhost against kubeconfig; (wall seconds, output). Exits on failure."""
    argv, env = command(playbook, kubeconfig, env)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"ansible-playbook failed ({result.returncode}): {(result.stdout + result.stderr)[-3000:]}")
    return elapsed, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", type=Path, required=True, help="folder of YAML files, applied in name order")
    parser.add_argument("--wait", action="store_true", help="wait for readiness (a first converge)")
    args = parser.parse_args()
    kubeconfig = os.environ.get("KUBECONFIG") or sys.exit("set KUBECONFIG")
    with tempfile.TemporaryDirectory() as folder:
        playbook = write_playbook(Path(folder), args.manifests, args.wait)
        seconds, output = run(playbook, Path(kubeconfig), dict(os.environ))
    counts = recap(output)
    print(f"ansible-playbook: {seconds:.3f}s  " + "  ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
