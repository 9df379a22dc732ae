"""Hive Metastore 4.0.1, the release of apache/hive:4.0.1, from Maven Central's
org.apache.hive:hive-standalone-metastore-server:4.0.1 bin tarball (4.1.0 and 4.2.0 answer 404
there). The image runs Java 8, which no registry here serves; the testbed runs Debian's Java 17,
which this release's metastore and schematool take without --add-opens or extra jars. The tarball
lacks what the image's full Hive and Hadoop 3.3.6 bring: assets/hive-metastore-pom.xml adds them
(Hadoop 3.3.6 client and HDFS jars, hadoop-aws with its AWS SDK bundle, hive-exec core,
hive-metastore, hive-common 4.0.1). The cache folder's name carries a digest of that pom, so a
changed classpath is a new folder, never a stale one.

Differences from the pod (and why): the pod's init container prepare-schema runs natively before
every start (its script with Debian's psql, the image's being the postgres one); fetch-jdbc-driver
runs natively once per version and checksum, cached as the pod's jars volume keeps the jar;
link-s3a-jars does not run: hadoop-aws and the AWS SDK bundle come from Maven Central (the pom).
The role's start-metastore.sh runs as the container's command, unchanged except that
$HIVE_HOME/bin/schematool and its `exec /entrypoint.sh` name the testbed's stand-ins for the
image's (written below: the same schematool class of Hive 4.0.1, and the image entrypoint's
IS_RESUME/initOrUpgradeSchema logic, then the metastore). The metastore listens on *:9083. JVM:
Java 17 for the image's 8, a tmp and log folder in the run folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import time
from pathlib import Path
from string import Template

from datamesh import probes
from testbed.addresses import ip_of
from testbed.common import (ASSETS, TestbedError, apt_install, build_atomically, cache_root, component_dir,
                            download, logger, maven_url, run, wait_until)
from testbed.native import base_env, native_command, native_env, native_path, place_config, translate_text
from testbed.processes import Procs, run_dir

HIVE_VERSION = "4.0.1"       # apache/hive:4.0.1, the release the role deploys
HADOOP_VERSION = "3.3.6"     # that image's /opt/hadoop (Hive 4.0.1's hadoop.version)
AWS_SDK_VERSION = "1.12.367"  # the bundle Hadoop 3.3.6's distribution ships beside hadoop-aws
JAVA17_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
POM = ASSETS / "hive-metastore-pom.xml"

log = logger("services")


def hive_java() -> Path:
    """The Java that runs the metastore. apache/hive:4.0.1 ships Java 8, which no registry here serves;
    Hive 4.0.1's standalone metastore runs unchanged on Debian's Java 17 (no --add-opens needed)."""
    if not (JAVA17_HOME / "bin" / "java").exists():
        apt_install("openjdk-17-jre-headless", log=log)
    return JAVA17_HOME


def hive_home() -> Path:
    # the classpath is part of the cache key: a changed pom gets a new folder, never a stale one
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:8]
    return component_dir("hive-metastore", f"{HIVE_VERSION}-{digest}")


def cached() -> bool:
    return hive_home().exists()


def install() -> Path:
    def build(tmp: Path) -> None:
        tarball = tmp / "metastore.tar.gz"
        download(maven_url("org.apache.hive", "hive-standalone-metastore-server", HIVE_VERSION, "tar.gz", "bin"),
                 tarball, log=log)
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="tar") if hasattr(tarfile, "data_filter") else tf.extractall(tmp)
        tarball.unlink()
        (tmp / f"apache-hive-metastore-{HIVE_VERSION}-bin").rename(tmp / "dist")
        pom = Template(POM.read_text()).safe_substitute(
            HADOOP_VERSION=HADOOP_VERSION, HIVE_VERSION=HIVE_VERSION, AWS_SDK_VERSION=AWS_SDK_VERSION)
        (tmp / "pom.xml").write_text(pom)
        mvn = shutil.which("mvn")
        if not mvn:
            apt_install("maven", log=log)
            mvn = "mvn"
        log(f"mvn dependency:copy-dependencies (Hadoop {HADOOP_VERSION}, hadoop-aws, AWS SDK {AWS_SDK_VERSION}); "
            "the PostgreSQL JDBC driver comes from the role's init container (hive_aux_jars)")
        env = dict(os.environ, JAVA_HOME=str(hive_java()))
        run([mvn, "-B", "-q", f"-Dmaven.repo.local={cache_root() / 'm2'}", "-f", str(tmp / "pom.xml"),
             "dependency:copy-dependencies", f"-DoutputDirectory={tmp / 'deps'}", "-DincludeScope=runtime"],
            env=env, capture=True, timeout=1800)

    return build_atomically(hive_home(), build)


HIVE_HOME_POD = "/opt/hive"          # HIVE_HOME of apache/hive:4.0.1 (bin/schematool, bin/hive)
HIVE_ENTRYPOINT_POD = "/entrypoint.sh"

# The parts of apache/hive:4.0.1 that the role's start-metastore.sh calls, for the standalone
# metastore of the testbed: $HIVE_HOME/bin/schematool and /entrypoint.sh (its metastore branch).
HIVE_SCHEMATOOL = """\
#!/bin/bash
# Written by testbed/hive.py: stands in for apache/hive:4.0.1's $HIVE_HOME/bin/schematool
# (bin/hive --service schemaTool): the same tool class of Hive 4.0.1, on the testbed's classpath.
exec "$JAVA_HOME/bin/java" $TESTBED_HIVE_JVM_OPTS $HADOOP_CLIENT_OPTS -cp "$TESTBED_HIVE_CLASSPATH" \\
  org.apache.hadoop.hive.metastore.tools.schematool.MetastoreSchemaTool "$@"
"""
HIVE_ENTRYPOINT = """\
#!/bin/bash
# Written by testbed/hive.py: stands in for apache/hive:4.0.1's /entrypoint.sh, which
# start-metastore.sh execs. As the image's: unless IS_RESUME=true, `schematool -initOrUpgradeSchema`
# (Hive 4; -initSchema before) and exit 1 if that fails; HADOOP_CLIENT_OPTS="$HADOOP_CLIENT_OPTS
# -Xmx1G $SERVICE_OPTS"; then the metastore on METASTORE_PORT (default 9083).
: ${DB_DRIVER:=derby}
SKIP_SCHEMA_INIT="${IS_RESUME:-false}"
export HADOOP_CLIENT_OPTS="$HADOOP_CLIENT_OPTS -Xmx1G $SERVICE_OPTS"
if [[ "${SKIP_SCHEMA_INIT}" == "false" ]]; then
  COMMAND="-initOrUpgradeSchema"
  if [ "$(echo "$HIVE_VER" | cut -d '.' -f1)" -lt "4" ]; then
    COMMAND="-${SCHEMA_COMMAND:-initSchema}"
  fi
  if "$HIVE_HOME/bin/schematool" -dbType "$DB_DRIVER" $COMMAND; then
    echo "Initialized schema successfully.."
  else
    echo "Schema initialization failed!"
    exit 1
  fi
fi
if [ "${SERVICE_NAME}" != "metastore" ]; then
  echo "the service testbed runs SERVICE_NAME=metastore only, not '${SERVICE_NAME}'" >&2
  exit 1
fi
export METASTORE_PORT=${METASTORE_PORT:-9083}
exec "$JAVA_HOME/bin/java" $TESTBED_HIVE_JVM_OPTS $HADOOP_CLIENT_OPTS -cp "$TESTBED_HIVE_CLASSPATH" \\
  org.apache.hadoop.hive.metastore.HiveMetaStore -p "$METASTORE_PORT"
"""


def init_container(cfg: dict, name: str) -> dict:
    init = next((c for c in cfg.get("init_containers") or [] if c["name"] == name), None)
    if init is None:
        raise TestbedError(f"the hive-metastore pod has no init container {name}")
    return init


def hive_aux_jars(cfg: dict) -> Path:
    """Run the pod's init container fetch-jdbc-driver (files/hive/fetch-jdbc-driver.sh: download the
    PostgreSQL JDBC driver the role pins and check its SHA-256) natively, once per version and
    checksum; cached like every download. Returns the folder with the jar (the aux-jars volume)."""
    env = init_container(cfg, "fetch-jdbc-driver")["env"]
    final = component_dir("hive-aux-jars", f"{env.get('JDBC_VERSION')}-{str(env.get('JDBC_SHA256'))[:12]}")

    def build(tmp: Path) -> None:
        (tmp / "aux-jars").mkdir()
        run_init_container(cfg, "fetch-jdbc-driver", tmp)
        for p in tmp.iterdir():
            if p.name != "aux-jars":
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    return build_atomically(final, build) / "aux-jars"


def run_init_container(cfg: dict, name: str, base: Path) -> None:
    """Run one of the pod's init containers natively, with its files in `base` and its env, as the
    kubelet does before the metastore starts; its own error when it fails."""
    init = init_container(cfg, name)
    paths = init["paths"]
    for pod, target in place_config(init, base).items():
        if pod.endswith(".sh"):
            target.write_text(translate_text(target.read_text(), paths, base))
    cmd = native_command(init, base)
    out = run(cmd, env=base_env(native_env(init, base)), cwd=base, capture=True, check=False, timeout=360)
    with open(base / f"init-{name}.log", "a") as fh:
        fh.write(f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n{out.stdout}")
    if out.returncode != 0:
        raise TestbedError(f"the hive-metastore init container {name} failed (exit code {out.returncode}):\n"
                           f"{out.stdout[-3000:]}")
    log(f"hive-metastore: init container {name}: {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else 'ok'}")


def start(procs: Procs, cfg: dict) -> float:
    """The pod's init containers prepare-schema (drops a half-made schema) and fetch-jdbc-driver
    (cached, as the pod's volume keeps the jar), then the metastore container's own command (the
    role's start-metastore.sh: `schematool -initOrUpgradeSchema`, then the image's entrypoint)."""
    t0 = time.monotonic()
    home = install()
    java = hive_java()
    base = run_dir() / "hive"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    run_init_container(cfg, "prepare-schema", base)
    files = place_config(cfg, base)
    for pod, target in files.items():  # scripts the testbed runs: their pod paths point into the run folder
        if pod.endswith(".sh"):
            target.write_text(translate_text(target.read_text(), paths, base))
    conf = native_path("/opt/hive/conf/hive-site.xml", paths, base).parent
    if not any(conf.glob("*log4j2.properties")):
        shutil.copy(home / "dist" / "conf" / "metastore-log4j2.properties", conf)
    aux = native_path("/opt/datamesh/aux-jars", paths, base)
    if aux.is_symlink() or aux.is_file():
        aux.unlink()
    elif aux.is_dir():
        shutil.rmtree(aux)
    aux.symlink_to(hive_aux_jars(cfg), target_is_directory=True)
    image = native_path(HIVE_HOME_POD, paths, base)
    (image / "bin").mkdir(parents=True, exist_ok=True)
    for target, text in ((image / "bin" / "schematool", HIVE_SCHEMATOOL),
                         (native_path(HIVE_ENTRYPOINT_POD, paths, base), HIVE_ENTRYPOINT)):
        target.write_text(text)
        target.chmod(0o755)
    scripts = image / "scripts"  # MetastoreSchemaTool reads its SQL from $METASTORE_HOME/scripts
    if scripts.is_symlink():  # re-pointed every start: a changed classpath is a new cache folder
        scripts.unlink()
    scripts.symlink_to(home / "dist" / "scripts", target_is_directory=True)
    (base / "tmp").mkdir(exist_ok=True)
    (base / "log").mkdir(exist_ok=True)
    env = base_env(native_env(cfg, base), java=java)
    if " " in str(base):
        raise TestbedError(f"the run folder {base} has a space in its path; the metastore's scripts split on spaces")
    env.update({
        "METASTORE_HOME": str(image),
        # as the image's bin/hive: conf, the aux jars (HIVE_AUX_JARS_PATH), Hive's and Hadoop's jars
        "TESTBED_HIVE_CLASSPATH": os.pathsep.join([
            str(conf), f"{env.get('HIVE_AUX_JARS_PATH', aux)}/*",
            str(home / "dist" / "lib" / "*"), str(home / "deps" / "*")]),
        "TESTBED_HIVE_JVM_OPTS": f"-Djava.io.tmpdir={base / 'tmp'} -Dmetastore.log.dir={base / 'log'}",
    })
    cmd = native_command(cfg, base)
    if not cmd:
        raise TestbedError("the metastore container has no command: the testbed runs the role's start script")
    out = base / "hive-metastore.out"
    p = procs.start("hive-metastore", cmd, env=env, cwd=base, log_file=out)
    svc = cfg["service"][0]
    host, port = svc["host"], svc["target_port"]
    wait_until(f"Hive Metastore {host}:{port}", lambda: probes.port_open(ip_of(host), port) and
               "default" in probes.thrift_get_all_databases(host, port), 240, p, out, interval=0.5)
    return time.monotonic() - t0
