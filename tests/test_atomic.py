"""Atomic writes: complete or absent, never half-written, with the permissions of a plain open()."""

from __future__ import annotations

import os
import stat

import pytest

from ratbench.atomic import write_json, write_text


def test_written_file_is_complete_and_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a" / "r.json", {"x": 1})
    finally:
        os.umask(old)
    path = tmp_path / "a" / "r.json"
    assert path.read_text() == '{\n "x": 1\n}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.txt"
    write_text(path, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]
