"""Optimisers: LARS with the paper's exclusions, SGD and AdamW for small runs."""

from byol.optim.factory import build_optimizer, parameter_groups
from byol.optim.lars import LARS

__all__ = ["LARS", "build_optimizer", "parameter_groups"]
