import json
import os

import pytest

from dlskills._io import atomic_write, atomic_write_json


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_new_files_get_the_umask_mode_and_existing_files_keep_theirs(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    fresh = atomic_write_json(tmp_path / "fresh.json", {"a": 1})
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~mask
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    kept.chmod(0o600)
    atomic_write_json(kept, {"b": 2})
    assert kept.stat().st_mode & 0o777 == 0o600
