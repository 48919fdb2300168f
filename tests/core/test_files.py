"""matryo.files.write_replacing: the one way matryo replaces a file (models, matryo.json, indexes, caches)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from matryo import files
from matryo.files import write_replacing


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_the_bytes_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    write_replacing(target, lambda file: file.write(b"new"))
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == []
    write_replacing(target, lambda file: file.write(b"newer"))
    assert target.read_bytes() == b"newer" and _leftovers(tmp_path) == []


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    for umask, mode in ((0o027, 0o640), (0o002, 0o664)):  # 0o002: group-writable, as on shared machines
        old = os.umask(umask)
        try:
            write_replacing(tmp_path / f"new{umask}", lambda file: file.write(b"x"))
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / f"new{umask}").stat().st_mode) == mode
    kept = tmp_path / "kept"
    kept.write_bytes(b"old")
    kept.chmod(0o604)
    write_replacing(kept, lambda file: file.write(b"x"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o604 and kept.read_bytes() == b"x"


def test_a_link_is_replaced_and_its_file_left_alone(tmp_path: Path) -> None:
    # e.g. model.safetensors linked into the Hugging Face cache: the blob must keep the bytes its name promises
    real = tmp_path / "real"
    real.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to(real)
    write_replacing(link, lambda file: file.write(b"new"))
    assert not link.is_symlink() and link.read_bytes() == b"new" and real.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_link_loop_or_a_dangling_link_is_replaced(tmp_path: Path) -> None:
    loop, dangling = tmp_path / "loop", tmp_path / "dangling"
    loop.symlink_to(loop)
    dangling.symlink_to(tmp_path / "nowhere")
    for target in (loop, dangling):
        write_replacing(target, lambda file: file.write(b"new"))
        assert not target.is_symlink() and target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError("bad payload"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def write(file: BinaryIO) -> None:
        file.write(b"half")
        raise error

    with pytest.raises(type(error)):
        write_replacing(target, write)
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_folder_target_is_an_oserror_and_the_folder_is_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        write_replacing(folder, lambda file: file.write(b"x"))
    assert (folder / "inside").is_dir() and _leftovers(tmp_path) == []


def test_the_bytes_reach_the_disk_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(files.os, "replace", lambda a, b: (events.append("replace"), replace(a, b))[1])
    write_replacing(tmp_path / "a.bin", lambda file: file.write(b"x"))
    assert events == ["fsync", "replace"]


def test_an_open_reader_keeps_the_old_bytes(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old bytes")
    with target.open("rb") as reader:
        write_replacing(target, lambda file: file.write(b"new"))
        assert reader.read() == b"old bytes"
    assert target.read_bytes() == b"new"


def test_save_pretrained_over_weights_linked_into_a_cache_leaves_the_cache_alone(tmp_path: Path) -> None:
    # a folder whose model.safetensors links to a content-addressed blob (huggingface_hub's cache, `cp -rs`)
    from tests.conftest import make_tiny_model

    from matryo import StaticEncoder

    folder = make_tiny_model(tmp_path / "model", layout="st_root")
    (tmp_path / "blobs").mkdir()
    blobs = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file()):  # every file a link, as in a hub snapshot
        blob = tmp_path / "blobs" / f"sha256-of-{file.name}"
        file.rename(blob)
        file.symlink_to(blob)
        blobs[blob] = blob.read_bytes()
    assert {"model.safetensors", "tokenizer.json", "modules.json"} <= {b.name[10:] for b in blobs}
    other = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "other", layout="st_root", seed=1))
    other.save_pretrained(folder)  # another model saved over the folder
    assert all(blob.read_bytes() == data for blob, data in blobs.items())
    other.tokenizer.save(str(tmp_path / "saved-by-tokenizers.json"))  # the bytes Tokenizer.save writes
    assert (folder / "tokenizer.json").read_bytes() == (tmp_path / "saved-by-tokenizers.json").read_bytes()
    assert not any(p.is_symlink() for p in folder.iterdir())
    assert StaticEncoder.from_pretrained(folder).fingerprint == other.fingerprint


def test_write_json_writes_indented_json_and_a_newline(tmp_path: Path) -> None:
    files.write_json(tmp_path / "config.json", {"a": [1, 2], "é": None})
    assert (tmp_path / "config.json").read_text(
        encoding="utf-8"
    ) == '{\n  "a": [\n    1,\n    2\n  ],\n  "\\u00e9": null\n}\n'
