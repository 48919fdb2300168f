"""Fixtures for the CLI tests: tiny models, a small text folder, and a runner for ``matryo.cli.main``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import make_tiny_model

from matryo import cli

DOCS = {
    "gzip.md": "how to read a gzip file in python\n\nopen the file with gzip and read the data",
    "args.txt": "parse command line argument with python code",
    "animals/cat.txt": "the cat and the dog in the house",
    "animals/bird.md": "a bird in a tree by the river",
    "city.txt": "the car on the road to the city",
}


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256-d tiny model, so the first pass (128 dims) really is a truncation."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny256", dim=256)


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same width, other weights: another fingerprint."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "other256", dim=256, seed=1)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A folder of five small text files (one in a subfolder)."""
    root = tmp_path / "docs"
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Call ``matryo.cli.main(argv)`` and return ``(exit code, stdout, stderr)``."""

    def _run(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: --help, --version (0) and usage errors (2)
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def usage_error(code: int, err: str) -> str:
    """Check a usage error (exit 2, argparse's usage line then one error line) and return the error line."""
    lines = err.strip().splitlines()
    assert code == 2 and lines[0].startswith("usage: matryo") and "Traceback" not in err, err
    assert lines[-1].startswith("matryo ") and ": error: argument " in lines[-1], err
    return lines[-1]
