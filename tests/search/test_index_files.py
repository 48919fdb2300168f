"""NumpyIndex.save / NumpyIndex.load (one .npz file, no pickle) and NumpyIndex.delete."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import make_tiny_model

from matryo import StaticEncoder
from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    StoreFormatError,
    StoreWriteError,
)
from matryo.index import NumpyIndex

COMBOS = [("float32", "float32"), ("int8", "int8"), ("binary", "none"), ("int8", "float16"), ("binary", "int8")]


def _same_results(a: NumpyIndex, b: NumpyIndex, store: str, queries=("alpha beta", "pi rho", "tau")) -> None:
    for mode in ("two_stage", "first_pass") if store == "none" else ("two_stage", "exact", "first_pass"):
        got, want = a.search(list(queries), k=7, mode=mode), b.search(list(queries), k=7, mode=mode)
        assert [h.ids for h in got] == [h.ids for h in want], mode
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x.scores, y.scores)


@pytest.mark.parametrize(("first_pass", "store"), COMBOS)
def test_save_load_round_trip_keeps_results_and_later_adds(
    encoder, corpus, tmp_path: Path, first_pass: str, store: str
) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store)
    idx.add(ids[:100], texts[:100])
    idx.add(ids[100:200], texts[100:200])
    idx.save(tmp_path / "index.npz")
    back = NumpyIndex.load(tmp_path / "index.npz", encoder)
    assert (back.truncate_dim, back.first_pass_codec_name, back.store_name) == (16, first_pass, store)
    assert back.ids == idx.ids and len(back) == 200
    _same_results(back, idx, store)
    # adds after loading (int8 ranges may widen and re-encode) give what the original gives
    for copy in (back, idx):
        copy.add(ids[200:], [f"{t} omega omega" for t in texts[200:]])
    assert back.ids == idx.ids == ids
    _same_results(back, idx, store)
    if first_pass == "int8":
        assert back._first_codec.to_config() == idx._first_codec.to_config()


def test_int_ids_load_as_ints_and_other_ids_are_refused(encoder, tmp_path: Path) -> None:
    idx: NumpyIndex = NumpyIndex(encoder, truncate_dim=16)
    idx.add([1, np.int64(2), "3"], ["alpha", "beta", "gamma"])
    idx.save(tmp_path / "ints.npz")
    back = NumpyIndex.load(tmp_path / "ints.npz", encoder)
    assert back.ids == [1, 2, "3"] and [type(i) for i in back.ids] == [int, int, str]
    assert back.search("beta", k=1).ids == [2]
    for bad in ((1, 2), True, 2.5):
        other: NumpyIndex = NumpyIndex(encoder, truncate_dim=16)
        other.add([bad], ["alpha"])
        with pytest.raises(InvalidTypeError, match="save\\(\\) keeps str and int ids"):
            other.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ints.npz"], "no temporary file left behind"


def test_an_empty_index_round_trips_with_its_calibration(encoder, corpus, tmp_path: Path) -> None:
    ids, texts = corpus
    sample = encoder.encode(texts[:50])
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="int8", store="int8", calibration=sample)
    idx.save(tmp_path / "empty.npz")
    back = NumpyIndex.load(tmp_path / "empty.npz", encoder)
    assert len(back) == 0 and back.search("alpha").ids == []
    for copy in (back, idx):
        copy.add(ids, texts)
    assert back._store_codec.to_config() == idx._store_codec.to_config(), "the saved sample calibrated the codec"
    _same_results(back, idx, "int8")


def test_an_interrupted_save_keeps_the_previous_file(encoder, corpus, tmp_path: Path, monkeypatch) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids[:10], texts[:10])
    path = tmp_path / "index.npz"
    idx.save(path)
    before = path.read_bytes()
    idx.add(ids[10:], texts[10:])

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(KeyboardInterrupt):
        idx.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]
    monkeypatch.undo()
    idx.save(path)
    assert len(NumpyIndex.load(path, encoder)) == 300


def test_load_refuses_another_model_and_files_it_did_not_write(tmp_path: Path) -> None:
    model = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "m", dim=32))
    other = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "o", dim=32, seed=1))
    wider = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "w", dim=48))
    idx: NumpyIndex[str] = NumpyIndex(model, truncate_dim=16)
    idx.add(["a", "b"], ["the cat", "the dog"])
    path = tmp_path / "index.npz"
    idx.save(path)
    assert NumpyIndex.load(path, model).search("cat", k=1).ids == ["a"]
    both = f"fingerprint {model.fingerprint}.*fingerprint {other.fingerprint}"
    with pytest.raises(DimensionMismatchError, match=both):
        NumpyIndex.load(path, other)
    with pytest.raises(DimensionMismatchError, match="48 dims wide"):
        NumpyIndex.load(path, wider)
    with pytest.raises(FileNotFoundError):
        NumpyIndex.load(tmp_path / "nowhere.npz", model)
    (tmp_path / "text.npz").write_text("not an index")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    for name in ("text.npz", "plain.npz"):
        with pytest.raises(StoreFormatError, match="is not a NumpyIndex file written by NumpyIndex.save"):
            NumpyIndex.load(tmp_path / name, model)

    with np.load(path) as data:
        files = {name: data[name] for name in data.files}
    meta = json.loads(files["meta"].tobytes())

    def rewrite(name: str, meta_changes: dict, **arrays: np.ndarray) -> Path:
        changed = {**files, **arrays, "meta": np.frombuffer(json.dumps({**meta, **meta_changes}).encode(), np.uint8)}
        np.savez(tmp_path / name, **changed)
        return tmp_path / name

    with pytest.raises(StoreFormatError, match="format version 99; this matryo reads version 1"):
        NumpyIndex.load(rewrite("future.npz", {"version": 99}), model)
    for name, changes, arrays, expected in (
        ("ids.npz", {"ids": ["a"]}, {}, "does not hold 1 rows"),
        ("dup.npz", {"ids": ["a", "a"]}, {}, "ids are not unique"),
        ("codes.npz", {}, {"first_codes": files["first_codes"][:, :8]}, "first_codes does not fit its codec"),
        ("dtype.npz", {}, {"store_codes": files["store_codes"].astype(np.float16)}, "store_codes does not fit"),
        ("texts.npz", {"texts": ["x", "y"]}, {}, "2 texts for 2 ids with store='float32'"),
        ("codec.npz", {"first_codec": {"codec": "nope"}}, {}, "Unknown codec|Not a matryo codec config"),
    ):
        with pytest.raises(StoreFormatError, match=expected):
            NumpyIndex.load(rewrite(name, changes, **arrays), model)


def test_delete_removes_documents_and_ignores_unknown_ids(encoder, corpus, tmp_path: Path) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="int8", store="none")
    idx.add(ids, texts)
    gone = ids[::3]
    assert idx.delete([*gone, "never-added"]) == len(gone)
    assert idx.delete(gone) == 0
    remaining = [i for i in ids if i not in set(gone)]
    assert idx.ids == remaining and len(idx) == len(remaining)
    # the same as an index built from the remaining documents only
    fresh: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="int8", store="none")
    fresh.add(ids, texts)  # same int8 ranges: calibrated on the same first batch
    fresh.delete(gone)
    text_of = dict(zip(ids, texts, strict=True))
    for query in ("alpha beta", "pi rho", text_of[gone[0]]):
        hits = idx.search(query, k=20)
        assert not set(hits.ids) & set(gone)
        assert hits.ids == fresh.search(query, k=20).ids
    idx.add([gone[0]], [text_of[gone[0]]])  # a deleted id can be added again
    assert idx.search(text_of[gone[0]], k=1).ids == [gone[0]]
    idx.save(tmp_path / "after.npz")
    assert NumpyIndex.load(tmp_path / "after.npz", encoder).ids == [*remaining, gone[0]]
    assert idx.delete(idx.ids) == len(remaining) + 1 and len(idx) == 0
    assert idx.search("alpha beta").ids == [] and idx.search("alpha", mode="first_pass").ids == []
    with pytest.raises(InvalidTypeError, match="wrap it in a list"):
        idx.delete("doc-1")


def test_a_search_during_deletes_sees_the_index_before_or_after_each(encoder, corpus) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids, texts)
    query = encoder.encode("alpha beta")
    full = encoder.encode(texts)
    order = [ids[i] for i in np.argsort(-(full @ query), kind="stable")]
    errors: list[BaseException] = []

    states = [order[j : j + 5] for j in range(41)]  # the best hits after each of the 40 deletes (best first)

    def search() -> None:
        try:
            for _ in range(200):
                got = idx.search_vectors(query, k=5)[0].ids
                assert got in states, got  # never a half-deleted index
        except BaseException as exc:  # noqa: BLE001  # reported below
            errors.append(exc)

    thread = threading.Thread(target=search)
    thread.start()
    for doc_id in order[:40]:
        idx.delete([doc_id])
    thread.join()
    assert errors == []
    assert idx.search_vectors(query, k=5)[0].ids == order[40:45]


def test_save_writes_a_file_others_can_read_through_links_and_refuses_folders(encoder, tmp_path: Path) -> None:
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(["a"], ["alpha"])
    old = os.umask(0o022)
    try:
        idx.save(tmp_path / "new.npz")  # a private temporary file renamed into place kept mode 0600
        assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o644
        (tmp_path / "shared.npz").write_bytes(b"old")
        os.chmod(tmp_path / "shared.npz", 0o664)
        idx.save(tmp_path / "shared.npz")
        assert stat.S_IMODE((tmp_path / "shared.npz").stat().st_mode) == 0o664
    finally:
        os.umask(old)
    (tmp_path / "link.npz").symlink_to(tmp_path / "shared.npz")
    idx.add(["b"], ["beta"])
    idx.save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink() and NumpyIndex.load(tmp_path / "shared.npz", encoder).ids == ["a", "b"]
    (tmp_path / "folder").mkdir()
    with pytest.raises(InvalidArgumentError, match="it is a folder. Pass a file path"):
        idx.save(tmp_path / "folder")
    with pytest.raises(StoreWriteError, match="missing/index.npz.*Check that the folder exists") as info:
        idx.save(tmp_path / "missing" / "index.npz")
    assert isinstance(info.value, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "link.npz", "new.npz", "shared.npz"]


def test_load_says_what_the_file_is_and_lets_os_errors_through(encoder, tmp_path: Path) -> None:
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(StoreFormatError, match="it holds one ndarray, not the .npz archive"):
        NumpyIndex.load(tmp_path / "array.npy", encoder)
    with pytest.raises(IsADirectoryError):  # not "is not a NumpyIndex file ... save the index again"
        NumpyIndex.load(tmp_path, encoder)
    idx: NumpyIndex = NumpyIndex(encoder, truncate_dim=16)
    idx.add([1, 2], ["alpha", "beta"])
    idx.save(tmp_path / "index.npz")
    with np.load(tmp_path / "index.npz") as data:
        files = {name: data[name] for name in data.files}
    meta = json.loads(files["meta"].tobytes())
    for name, meta_changes, arrays, expected in (
        ("bools.npz", {"ids": [True, 2]}, {}, "ids are not unique strs and ints"),
        ("nodim.npz", {"dim": None}, {}, "no integer 'dim' and 'truncate_dim'"),
        ("empty.npz", {}, {"empty": files["empty"].astype(np.uint8)}, "empty is not one value per id of the type"),
        ("norms.npz", {}, {"store_norms": files["store_norms"].astype(str)}, "store_norms is not one value per id"),
    ):
        header = np.frombuffer(json.dumps({**meta, **meta_changes}).encode(), np.uint8)
        np.savez(tmp_path / name, **{**files, **arrays, "meta": header})
        with pytest.raises(StoreFormatError, match=expected):
            NumpyIndex.load(tmp_path / name, encoder)
    with pytest.raises(InvalidTypeError, match=re.escape("not one int; wrap it in a list: delete([5])")):
        idx.delete(5)
    with pytest.raises(InvalidTypeError, match="ids must be a sequence of ids, not None.$"):
        idx.delete(None)


def test_save_takes_any_file_name_that_fits_and_refuses_a_link_loop(encoder, tmp_path: Path) -> None:
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(["a"], ["alpha"])
    long_name = "i" * 245 + ".npz"  # 249 characters: the temporary file's name must fit too
    idx.save(tmp_path / long_name)
    assert NumpyIndex.load(tmp_path / long_name, encoder).ids == ["a"]
    (tmp_path / "loop1.npz").symlink_to("loop2.npz")
    (tmp_path / "loop2.npz").symlink_to("loop1.npz")
    with pytest.raises(StoreWriteError, match="symbolic link loop"):
        idx.save(tmp_path / "loop1.npz")
