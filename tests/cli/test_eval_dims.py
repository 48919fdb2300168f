"""`--dims` accepts the model's own width as a number (it equals 'full', it is not 'wider')."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_commands import CORPUS, write_beir

from matryo.cli_eval import evaluate, parse_dims


def test_parse_dims_keeps_the_model_width() -> None:
    dropped: list[int] = []
    assert parse_dims("64,256,512", 256, dropped=dropped) == [64, 256]
    assert dropped == [512]


def test_eval_with_the_model_width_as_a_number(model: Path, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "the cat and the dog"}, [("q1", "d1", 1)])
    rows, info = evaluate(beir, str(model), "256")
    assert [r["dim"] for r in rows[:-1]] == [256]
    assert info["notes"] == []


def test_first_pass_at_the_full_width_is_allowed(model: Path, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "the cat and the dog"}, [("q1", "d1", 1)])
    rows, _ = evaluate(beir, str(model), "full", first_pass_dim=256)
    assert rows[-1]["name"].startswith("two-stage 256->256")


def test_zero_width_is_refused(run) -> None:
    import pytest

    from matryo.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        parse_dims("0,64", 256)
    code, _, err = run("eval", "somewhere", "--dims", "0")
    assert code == 2 and "positive widths" in err, err
