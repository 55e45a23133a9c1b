"""The README's Python API example runs as written (with fewer steps)."""

import re
from pathlib import Path


def test_readme_python_example_runs() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    code = block.group(1).replace("total_steps = 1000", "total_steps = 2")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    model = namespace["model"]
    assert hasattr(model, "online") and hasattr(model, "target")
