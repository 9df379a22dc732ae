"""The data lake bucket from the user's machine: one S3 client through the minio endpoint, and
every failure of it as one sentence naming the bucket and key. Used by the seed steps that write
objects (the raw files, the dbt state, the published docs)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from datamesh import probes
from datamesh.errors import DatameshError


@contextlib.contextmanager
def s3_errors(bucket: str, key: str, doing: str):
    """Any failure of the S3 client as one sentence naming the bucket and key."""
    import urllib3
    from minio.error import MinioException, S3Error

    try:
        yield
    except S3Error as exc:
        if exc.code == "NoSuchBucket":
            raise DatameshError(missing_bucket(bucket)) from exc
        raise DatameshError(f"the object store refused to {doing} s3://{bucket}/{key}: {exc.code} ({exc.message}); "
                            f"check the minio role with `invoke status`.") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise DatameshError(f"the object store did not {doing} s3://{bucket}/{key}: {exc}; "
                            f"check the minio role with `invoke status` and re-run.") from exc


def missing_bucket(bucket: str) -> str:
    return f"the bucket {bucket} does not exist in the object store: run `invoke up` (the minio role makes it)."


def client(host: str, port: int, user: str, password: str):
    import urllib3

    retries = urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504])
    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=30, read=300), maxsize=8, retries=retries)
    return probes.s3_client(f"{host}:{port}", user, password, http_client=pool)


@contextlib.contextmanager
def bucket(reach) -> Iterator[tuple[object, str]]:
    """(client, bucket name) for the inventory's bucket, which must exist, through a port-forward."""
    name = reach.inventory["minio"]["bucket"]
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        s3 = client(host, port, login.user, login.password)
        with s3_errors(name, "", "check"):
            if not s3.bucket_exists(name):
                raise DatameshError(missing_bucket(name))
        yield s3, name


MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")  # the S3 error codes of a key that is not there


def stat(s3, bucket_name: str, key: str):
    """The object's metadata (minio's Object: size, metadata, ...), or None when there is no such key."""
    from minio.error import S3Error

    with s3_errors(bucket_name, key, "read the metadata of"):
        try:
            return s3.stat_object(bucket_name, key)
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise


def read(s3, bucket_name: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such key."""
    from minio.error import S3Error

    with s3_errors(bucket_name, key, "read"):
        try:
            answer = s3.get_object(bucket_name, key)
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise
        try:
            return answer.read()
        finally:
            answer.close()
            answer.release_conn()


def write(s3, bucket_name: str, key: str, data: bytes, content_type: str, metadata: dict | None = None) -> None:
    import io

    with s3_errors(bucket_name, key, "upload"):
        s3.put_object(bucket_name, key, io.BytesIO(data), len(data), content_type=content_type, metadata=metadata)
