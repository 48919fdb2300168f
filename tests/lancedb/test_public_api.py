"""matryo_lancedb's public names are pinned; importing it registers "matryo"; no pandas or torch needed."""

from __future__ import annotations

from pathlib import Path

from tests.lancedb.helpers import start_python

import matryo_lancedb

PUBLIC = [
    "ALIAS",
    "MIN_INDEX_ROWS",
    "IndexReport",
    "MatryoEmbeddings",
    "MatryoReranker",
    "ModelMismatchError",
    "TableLayout",
    "TwoStageTable",
    "__version__",
    "create_two_stage_table",
    "default_index_params",
    "ensure_registered",
    "matryo_embeddings",
    "open_table",
    "open_two_stage_table",
]


def test_all_is_pinned() -> None:
    assert sorted(matryo_lancedb.__all__) == sorted(PUBLIC)
    assert all(hasattr(matryo_lancedb, name) for name in PUBLIC)


def test_import_registers_and_stays_light() -> None:
    child = start_python(
        "import sys, matryo_lancedb\n"
        "from lancedb.embeddings import get_registry\n"
        "print(get_registry().get('matryo').__name__, 'torch' in sys.modules)"
    )
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.split() == ["MatryoEmbeddings", "False"]


def test_library_code_never_needs_pandas() -> None:
    # lancedb imports pandas when it happens to be installed, but it is not a lancedb dependency
    source = Path(matryo_lancedb.__file__).parent
    for path in source.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "to_pandas" not in text and "import pandas" not in text, path
