"""Make the repository root importable, so ``benchmarks.speed`` resolves under plain ``pytest``."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
