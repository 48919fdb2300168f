"""Option bounds of the CLI parser (exit 2 only for values outside the documented range)."""

from __future__ import annotations

import pytest

from matryo.cli import build_parser


@pytest.mark.parametrize("command", [["search", "q", "--db", "x"], ["eval", "folder"]])
def test_rescore_multiplier_one_means_no_oversampling(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--rescore-multiplier", "1"])
    assert args.rescore_multiplier == 1.0


@pytest.mark.parametrize("value", ["0.99", "inf", "nan", "x"])
def test_rescore_multiplier_below_one_or_not_finite_is_a_usage_error(value: str) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["search", "q", "--db", "x", "--rescore-multiplier", value])
    assert info.value.code == 2
