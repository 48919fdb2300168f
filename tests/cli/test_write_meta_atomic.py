"""write_meta replaces matryo.json atomically: a write the disk refuses half-way keeps the DB's previous
matryo.json intact (and leaves no temporary file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from matryo.stores import DbMeta, read_meta, write_meta

# the new matryo.json is written by a child whose files may not grow past 64 bytes (EFBIG, as on a full disk); the
# limit is set by the child itself (a preexec_fn is not safe in a test worker that runs threads)
_CHILD = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
from matryo.stores import DbMeta, StoreWriteError, write_meta
try:
    write_meta(Path(sys.argv[1]), DbMeta("lancedb", None, "abc123", 64, 16, source=sys.argv[2]))
except StoreWriteError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_refused_rewrite_keeps_the_previous_matryo_json(tmp_path: Path) -> None:
    db = tmp_path / "db"
    old = DbMeta("lancedb", None, "abc123", 64, 16, source=str(tmp_path / "src"))
    write_meta(db, old)
    assert read_meta(db) == old and (db / "matryo.json").stat().st_size > 64
    child = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _CHILD, str(db), str(tmp_path / "other")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert child.returncode == 3 and "matryo.json could not be written" in child.stdout, child.stdout + child.stderr
    assert read_meta(db) == old  # neither truncated nor deleted
    assert sorted(p.name for p in db.iterdir()) == ["matryo.json"]
