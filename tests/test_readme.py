"""The README's Python code blocks run as written and do what the text says."""

import contextlib
import io
import math
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_python_example_runs_as_written_and_prints_the_loss() -> None:
    blocks = python_blocks()
    assert blocks, "the README has no Python example"
    for index, block in enumerate(blocks):
        steps = re.search(r"^total_steps = (\d+)$", block, re.M)
        assert steps is None or int(steps.group(1)) <= 20, "the example must finish in seconds"
        namespace: dict[str, object] = {}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, f"README.md python block {index}", "exec"), namespace)
        if "total_steps" in namespace:  # the training example
            lines = printed.getvalue().splitlines()
            total = namespace["total_steps"]
            assert lines and lines[-1].startswith(f"step {total}/{total}: loss ")
            losses = [float(line.rsplit(" ", 1)[1]) for line in lines]
            assert all(math.isfinite(loss) for loss in losses)
