"""Fixtures every test folder can use: a real S3 API server on 127.0.0.1.

``s3_endpoint`` starts moto's server (``moto[server]``, a dev dependency) once
per test session, in its own process, and points the AWS environment at it
(``AWS_ENDPOINT_URL`` and dummy credentials), so the tests' child processes
and Dask workers reach it too. Tests that use it are skipped when moto or
s3fs is not installed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint():
    """The URL of a moto S3 server on 127.0.0.1, with the AWS environment pointed at it."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        server.wait(timeout=30)


_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_PROFILE")


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint):
    """A bucket on the session's S3 server; its name (tests use :func:`s3_root` prefixes in it)."""
    import s3fs

    name = f"test-{uuid.uuid4().hex[:16]}"
    s3fs.S3FileSystem().mkdir(name)
    return name


@pytest.fixture
def s3_root(s3_bucket):
    """A fresh, empty prefix of the session's bucket: ``s3://<bucket>/<unique>``."""
    return f"s3://{s3_bucket}/{uuid.uuid4().hex[:12]}"
