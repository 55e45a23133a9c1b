"""Hostile config files: YAML alias bombs, oversized files and huge values."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from byol.cli.main import main
from tests.helpers import one_error_line

pytestmark = pytest.mark.usefixtures("one_thread")


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
train: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS)
    started = time.monotonic()
    assert main(["train", "--config", str(tmp_path / "bomb.yaml")]) == 2
    assert time.monotonic() - started < 5
    line = one_error_line(capsys)
    assert "may not use anchors (&) or aliases (*)" in line and len(line) < 400


def test_an_oversized_config_and_huge_values_give_short_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "big.yaml").write_text("train:\n  run_name: " + "x" * (2 << 20) + "\n")
    assert main(["train", "--config", str(tmp_path / "big.yaml")]) == 2
    assert "more than the 1048576 a config may have" in one_error_line(capsys)
    huge = "[" + ",".join(["1"] * 100_000) + "]"
    assert main(["train", "--optim.batch_size", huge]) == 2
    line = one_error_line(capsys)
    assert "must be an integer" in line and len(line) < 200
