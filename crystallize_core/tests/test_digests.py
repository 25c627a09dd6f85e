"""Artifact digests name their algorithm, and the helpers store authors use read and make them."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from crystallize.plugin import (
    ArtifactRecord,
    DocumentError,
    format_digest,
    hash_bytes,
    new_hasher,
    parse_digest,
)
from crystallize.plugin import documents as d
from crystallize.testing import MemoryStorage, RunStoreContract

SHA256_OF_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
BLAKE3_OF_ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"  # the BLAKE3 test vector

MALFORMED = [
    ("blake3:zz", "expected '<algorithm>:<lowercase hex>'"),
    ("md9:00", "unknown algorithm 'md9'"),
    (SHA256_OF_ABC, "expected '<algorithm>:<lowercase hex>'"),  # no algorithm: the colon is missing
    ("sha256:" + SHA256_OF_ABC[:-1], "a sha256 digest has 64 hex digits, not 63"),
    ("SHA256:" + SHA256_OF_ABC, "expected '<algorithm>:<lowercase hex>'"),
    ("sha256:" + SHA256_OF_ABC.upper(), "expected '<algorithm>:<lowercase hex>'"),
    ("shake_128:00", "unknown algorithm 'shake_128'"),  # variable length: no fixed digest to compare
    (":" + SHA256_OF_ABC, "expected '<algorithm>:<lowercase hex>'"),
]


def test_a_digest_is_the_algorithm_and_the_hex_of_the_bytes():
    assert hash_bytes(b"abc", "sha256") == f"sha256:{SHA256_OF_ABC}"
    assert hash_bytes(memoryview(b"abc"), "sha512") == "sha512:" + hashlib.sha512(b"abc").hexdigest()
    assert parse_digest(f"sha256:{SHA256_OF_ABC}") == ("sha256", SHA256_OF_ABC)
    assert format_digest("sha256", SHA256_OF_ABC) == f"sha256:{SHA256_OF_ABC}"
    hasher = new_hasher("sha256")
    for part in (b"a", b"b", b"c"):
        hasher.update(part)
    assert hasher.hexdigest() == SHA256_OF_ABC


def test_blake3_digests_come_from_the_blake3_package():
    pytest.importorskip("blake3")
    assert hash_bytes(b"abc", "blake3") == f"blake3:{BLAKE3_OF_ABC}"
    assert parse_digest(f"blake3:{BLAKE3_OF_ABC}") == ("blake3", BLAKE3_OF_ABC)


def test_blake3_without_its_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "blake3", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install blake3"):
        new_hasher("blake3")
    assert parse_digest(f"blake3:{BLAKE3_OF_ABC}")[0] == "blake3"  # reading a digest needs no package


def test_importing_the_plugin_api_does_not_import_blake3():
    script = "import sys, crystallize, crystallize.plugin, crystallize.testing; print('blake3' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("value", "why"), MALFORMED)
def test_a_malformed_digest_is_refused_naming_it(value, why):
    with pytest.raises(ValueError) as caught:
        parse_digest(value)
    assert repr(value) in str(caught.value) and why in str(caught.value)
    with pytest.raises(d.WrongShape) as shape:
        d.tagged_digest(value)
    assert repr(value) in str(shape.value) and why in str(shape.value)
    with pytest.raises(DocumentError, match="'digest'") as document:
        d.get({"digest": value}, "digest", d.tagged_digest, "manifest.json")
    assert repr(value) in str(document.value) and "manifest.json" in str(document.value)


def test_digests_that_are_not_strings_are_refused_by_their_type():
    with pytest.raises(ValueError, match="int is not a valid digest: expected a string"):
        parse_digest(5)  # type: ignore[arg-type]
    with pytest.raises(d.WrongShape, match=r"is null, not a valid digest"):
        d.tagged_digest(None)


def test_unknown_algorithms_are_refused_when_hashing_and_formatting():
    with pytest.raises(ValueError, match="unknown digest algorithm 'md9'"):
        new_hasher("md9")
    with pytest.raises(ValueError, match="unknown digest algorithm 'SHA256'"):
        new_hasher("SHA256")  # one spelling per algorithm, so equal digests compare equal
    with pytest.raises(ValueError, match=r"'sha256:abc' is not a valid digest: a sha256 digest has 64 hex digits"):
        format_digest("sha256", "abc")


def test_a_record_written_before_digests_were_tagged_reads_as_sha256():
    old = {
        "name": "m.bin",
        "step": "S",
        "condition": "baseline",
        "replicate": 0,
        "path": "replicate_0/baseline/S/m.bin",
        "size": 3,
        "sha256": SHA256_OF_ABC,
    }
    record = ArtifactRecord.from_json(old)
    assert record.digest == f"sha256:{SHA256_OF_ABC}"
    assert record.to_json() == {k: v for k, v in old.items() if k != "sha256"} | {"digest": record.digest}
    assert ArtifactRecord.from_json(record.to_json()) == record


class _Contract(RunStoreContract):
    """Run single contract checks by hand (not collected: its name does not start with ``Test``)."""

    travels_to_processes = False

    def __init__(self, storage_factory, digest_algorithm=None):
        self.storage_factory = storage_factory
        self.digest_algorithm = digest_algorithm

    def make_storage(self, tmp_path):
        return self.storage_factory()


def test_the_store_contract_rehashes_with_the_algorithm_each_record_names(tmp_path, monkeypatch):
    import crystallize._memory_store as memory_store

    _Contract(MemoryStorage, "sha256").test_an_artifact_write_is_committed_and_described(tmp_path)
    with pytest.raises(AssertionError, match="is not a blake3 digest"):
        _Contract(MemoryStorage, "blake3").test_an_artifact_write_is_committed_and_described(tmp_path)

    def mislabelled(data, algorithm):  # sha256 bytes labelled as another algorithm of the same length
        return "sha3_256:" + hashlib.sha256(data).hexdigest()

    monkeypatch.setattr(memory_store, "hash_bytes", mislabelled)
    with pytest.raises(AssertionError):
        _Contract(MemoryStorage).test_an_artifact_write_is_committed_and_described(tmp_path)
    monkeypatch.setattr(memory_store, "hash_bytes", lambda data, algorithm: "sha256:" + "0" * 64)
    with pytest.raises(AssertionError):
        _Contract(MemoryStorage).test_a_streamed_artifact_appears_whole_when_closed(tmp_path)
    monkeypatch.setattr(memory_store, "hash_bytes", lambda data, algorithm: "crc32:00000000")
    with pytest.raises(ValueError, match="'crc32:00000000' is not a valid digest: unknown algorithm"):
        _Contract(MemoryStorage).test_an_existing_file_is_stored_by_copy_or_by_move(tmp_path)
