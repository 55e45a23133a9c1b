"""LARS (You et al. 2017) as in the official BYOL code.

[official] ``utils/optimizers.py:91-103, 182-187``, per parameter w with gradient g:

1. g <- g + weight_decay * w
2. trust ratio r = eta * ||w|| / ||g|| (1 where either norm is 0); g <- r * g
3. v <- momentum * v + g
4. w <- w - lr * v

Parameter groups with ``lars_adaptation=False`` (biases and normalisation parameters, see
:func:`byol.optim.factory.parameter_groups`) skip step 2, and get ``weight_decay=0``. Note the
trust ratio's denominator is ||g + wd w||, not ||g|| + wd ||w|| as in some variants.

``trust_clip=True`` caps the adapted rate at the global one, r <- min(r / lr, 1), as
solo-learn's LARS ``clip_lr`` (``solo/utils/lars.py``), whose CIFAR recipe (eta 0.02) needs it:
without the cap, eta 0.02 moves every weight by 2% of its norm each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer


class LARS(Optimizer):
    """Layer-wise Adaptive Rate Scaling with momentum; every step is a handful of foreach ops.

    Args:
        params: parameters or parameter groups; a group may set ``lars_adaptation``.
        lr: learning rate (the engine overwrites it every step from the schedule).
        momentum: 0.9 ([official] ``configs/byol.py:58``).
        weight_decay: added to the gradient before the trust ratio.
        eta: trust coefficient 1e-3 ([official] ``configs/byol.py:60``).
        trust_clip: cap the trust ratio at 1 / lr (solo-learn's ``clip_lr``); off in the paper.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 1e-3,
        lars_adaptation: bool = True,
        trust_clip: bool = False,
    ) -> None:
        if lr < 0:
            raise ValueError(f"lr={lr} must be >= 0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum} must lie in [0, 1)")
        if weight_decay < 0:
            raise ValueError(f"weight_decay={weight_decay} must be >= 0")
        if eta <= 0:
            raise ValueError(f"eta={eta} must be > 0 (the paper uses 1e-3)")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "lars_adaptation": lars_adaptation,
            "trust_clip": trust_clip,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads: list[Tensor] = [p.grad for p in params if p.grad is not None]
            if group["weight_decay"] != 0:
                grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
            if group["lars_adaptation"]:
                param_norms = torch.stack(torch._foreach_norm(params))
                update_norms = torch.stack(torch._foreach_norm(grads))
                trust = torch.where(
                    (param_norms > 0) & (update_norms > 0),
                    group["eta"] * param_norms / update_norms,
                    torch.ones_like(param_norms),
                )
                if group["trust_clip"] and group["lr"] > 0:
                    trust = (trust / group["lr"]).clamp_(max=1.0)
                grads = list(torch._foreach_mul(grads, list(trust.unbind())))
            buffers = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    # Zeros, as optax.trace: the first step moves by lr * g.
                    state["momentum_buffer"] = torch.zeros_like(p)
                buffers.append(state["momentum_buffer"])
            torch._foreach_mul_(buffers, group["momentum"])
            torch._foreach_add_(buffers, grads)
            torch._foreach_add_(params, buffers, alpha=-group["lr"])
        return loss
