"""The object store: versitygw (Apache-2.0), built from the Go module proxy at VERSITYGW_VERSION, the
release the minio role deploys by default (images.versitygw), posix backend: one static binary,
about four minutes to build with a cold Go cache, starts in under a second, about 35 MB of memory.
MinIO is AGPL and is not built. The bucket Job's script runs with the AWS CLI from PyPI (awscli
AWSCLI_VERSION, the one the jupyterhub-dbt image ships, in a venv of its own).

Differences from the pod (and why):
- The server (minio.server: versitygw, docker-desktop's choice): the pod's versitygw arguments and
  env as rendered, except that `--port :P` binds the service address (ip:P) instead of every
  address, the posix folder is in the run folder, and `--sidecar` keeps the metadata in a folder
  where the run folder's filesystem has no user xattrs. Its init container data-folder (mkdir)
  runs natively. As in the pod, a posix backend: "directory marker" objects of non-empty folders
  cannot be deleted (ErrDirectoryNotEmpty). With minio.server: minio the stand-in is versitygw,
  MinIO's MINIO_ROOT_USER/MINIO_ROOT_PASSWORD becoming its ROOT_ACCESS_KEY/ROOT_SECRET_KEY and
  MinIO's data folder its posix folder; no console then.
- The bucket Job runs its rendered script (files/minio/buckets.sh) unchanged, natively, with the
  Job's env; `aws` is the AWS CLI v1 from PyPI where the Job's image has v2 (the s3api commands the
  script uses are the same in both).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from datamesh import probes
from testbed.addresses import check_loopback, ip_of
from testbed.common import (REPO, TestbedError, build_atomically, component_dir, go_env, logger, run,
                            wait_until)
from testbed.native import base_env, native_command, native_env, native_path, place_config, run_job, translate_text
from testbed.processes import Procs, run_dir

VERSITYGW_VERSION = os.environ.get("DATAMESH_TESTBED_VERSITYGW", "v1.8.0")
AWSCLI_VERSION = "1.46.3"  # the bucket Job's `aws`; the jupyterhub-dbt image pins the same release
# MinIO's variables -> versitygw's (same meaning: the root login of the S3 API), for minio.server: minio
S3_ENV = {"MINIO_ROOT_USER": "ROOT_ACCESS_KEY", "MINIO_ROOT_PASSWORD": "ROOT_SECRET_KEY"}

log = logger("services")


def install() -> Path:
    """versitygw built from the Go module proxy, and the AWS CLI the bucket Job's script calls
    (install_awscli); returns versitygw's folder."""
    def build(tmp: Path) -> None:
        if not shutil.which("go"):
            raise TestbedError("go is not installed; the object store (versitygw) is built with `go install`")
        env = go_env()
        env["GOBIN"] = str(tmp / "bin")
        log(f"go install github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}")
        run(["go", "install", "-trimpath", f"github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"],
            env=env, capture=True, timeout=3600, cwd=tmp)

    install_awscli()
    return build_atomically(component_dir("versitygw", VERSITYGW_VERSION), build)


def cached() -> bool:
    return component_dir("versitygw", VERSITYGW_VERSION).exists() and component_dir("awscli", AWSCLI_VERSION).exists()


AWS_WRAPPER = """#!/bin/sh
# Written by testbed/objectstore.py: the AWS CLI of the venv beside this folder.
exec "$(dirname "$0")/../venv/bin/python" -m awscli "$@"
"""


def install_awscli() -> Path:
    """awscli from PyPI in a venv of its own, with the jupyterhub-dbt image's constraints (so the
    same releases of its dependencies); bin/aws runs it. The venv is built here and renamed: the
    wrapper finds it relative to itself."""
    def build(tmp: Path) -> None:
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv)], capture=True)
        log(f"pip install awscli=={AWSCLI_VERSION}")
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--constraint", str(REPO / "files" / "images" / "jupyterhub-dbt" / "constraints.txt"),
             f"awscli=={AWSCLI_VERSION}"], capture=True, timeout=1800)
        (tmp / "bin").mkdir()
        (tmp / "bin" / "aws").write_text(AWS_WRAPPER)
        (tmp / "bin" / "aws").chmod(0o755)

    return build_atomically(component_dir("awscli", AWSCLI_VERSION), build)


def start(procs: Procs, cfg: dict) -> float:
    """The object store the render chose (cfg["server"]): versitygw with its pod's arguments and env,
    or, for MinIO (AGPL, not built), versitygw with MinIO's root login and data folder. Then the
    minio role's bucket Job: its rendered script, run natively (run_bucket_job)."""
    t0 = time.monotonic()
    home = install()
    base = run_dir() / "s3"
    base.mkdir(parents=True, exist_ok=True)
    place_config(cfg, base)
    paths = cfg.get("paths") or {"/data": "data"}
    svc = cfg["service"][0]
    ip, port = ip_of(svc["host"]), svc["target_port"]
    check_loopback(ip)
    if cfg.get("server") == "versitygw":
        for init in cfg.get("init_containers") or []:  # data-folder: the posix folder, made as the pod makes it
            run(native_command(init, base), env=base_env(native_env(init, base)), cwd=base, capture=True, timeout=60)
        args, _ = _versitygw_args(cfg.get("args") or [], ip, paths, base)
        env = base_env(native_env(cfg, base))
    else:
        args = ["--port", f"{ip}:{port}", "--quiet", "posix", str(data_folder(cfg))]
        env = base_env({S3_ENV[k]: v for k, v in native_env(cfg, base).items() if k in S3_ENV})
    data = data_folder(cfg)
    if set(S3_ENV.values()) - set(env):
        raise TestbedError(f"the object store's env has no {' or '.join(S3_ENV.values())} "
                           f"(or MinIO's {' or '.join(S3_ENV)}): the root login is missing")
    data.mkdir(parents=True, exist_ok=True)
    if not _xattr_ok(data):  # versitygw keeps object metadata in user xattrs, or in a sidecar folder
        (base / "meta").mkdir(exist_ok=True)
        at = args.index("posix") + 1
        args[at:at] = ["--sidecar", str(base / "meta")]
    p = procs.start("s3", [str(home / "bin" / "versitygw"), *args], env=env, cwd=base,
                    log_file=base / "versitygw.log")
    endpoint = f"{svc['host']}:{svc['port']}"
    wait_until(f"S3 {svc['host']}:{port}", lambda: probes.s3_buckets(endpoint, cfg["access_key"], cfg["secret_key"])
               is not None, 30, p, base / "versitygw.log")
    run_bucket_job(cfg["bucket_job"], base / "bucket-job")
    return time.monotonic() - t0


def data_folder(cfg: dict) -> Path:
    """The folder the S3 server keeps its buckets in, one subfolder each, as start() runs it."""
    base = run_dir() / "s3"
    paths = cfg.get("paths") or {"/data": "data"}
    if cfg.get("server") == "versitygw":
        return _versitygw_args(cfg.get("args") or [], "127.0.0.1", paths, base)[1]
    pod_args = cfg.get("args") or []
    data_pod = next((a for a in pod_args[1:] if a.startswith("/")), "/data") if pod_args[:1] == ["server"] else "/data"
    return native_path(data_pod, paths, base)


def _versitygw_args(args: list[str], ip: str, paths: dict[str, str], base: Path) -> tuple[list[str], Path]:
    """The pod's versitygw arguments for a native run, and its posix folder: every `--port :P` binds
    the service address (ip:P) instead of all addresses, pod paths point into the run folder."""
    out = []
    for i, arg in enumerate(args):
        if i and args[i - 1] in ("--port", "-p") and arg.startswith(":"):
            arg = f"{ip}{arg}"
        out.append(translate_text(arg, paths, base))
    if "posix" not in out[:-1]:
        raise TestbedError(f"the versitygw container's args {args} name no posix folder (`posix DIR`): "
                           "the testbed runs the posix backend the minio role renders")
    return out, Path(out[out.index("posix") + 1])


def run_bucket_job(job: dict, base: Path) -> None:
    """The minio role's bucket Job, natively: its command (sh -c files/minio/buckets.sh, as rendered)
    with the Job's env, its emptyDir (HOME) a fresh folder in `base`, and the AWS CLI from PyPI
    first on PATH. Its output goes to base/job.log; a failure is the Job's failure."""
    out = run_job(job, base, job.get("command", []) + job.get("args", []), install_awscli() / "bin",
                  "the minio role's bucket Job", timeout=360)
    log(f"s3: bucket job: {(out or 'ok').strip().splitlines()[-1]}")


def _xattr_ok(path: Path) -> bool:
    probe = path / ".xattr-probe"
    try:
        probe.write_bytes(b"")
        os.setxattr(probe, "user.datamesh", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
