import os

import pytest

from crystallize_artifacts.commit import TEMP_SUFFIX, write_atomic


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "f.bin"
    write_atomic(target, b"old")
    write_atomic(target, b"new content", durable=True)
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    write_atomic(target, b"old")
    real_write = os.write
    calls = []

    def failing_write(fd, data):
        if calls:
            raise OSError(28, "No space left on device")
        calls.append(1)
        return real_write(fd, bytes(data)[:3])  # a short write, then the disk is full

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"a much longer new content")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(TEMP_SUFFIX)]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:5]))
    write_atomic(tmp_path / "f", b"0123456789" * 10)
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == b"0123456789" * 10
