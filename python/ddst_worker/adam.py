"""Adam (no weight decay, no AMSGrad), as torch.optim.Adam computes it, in a class of our own.

Why not torch.optim.Adam itself: its step and its param-group methods import TorchDynamo (torch._dynamo, the
torch.compile front end) on first use, to fence themselves off from a compiler this worker never runs. That
import is about 2 s of CPU at every worker start (measured on the 2-core CI machine: build 2.0 s, 1.9 s of it
the import), paid by every run, table cell and test.

The arithmetic is torch's, op for op:
  - CPU: torch's single-tensor path (its CPU default), so CPU training is bit for bit what torch.optim.Adam
    gives (python/tests/test_adam.py checks it against torch.optim.Adam);
  - CUDA: torch's multi-tensor "capturable" path, with the step count and the bias corrections on the device.
    A CUDA graph can capture it (train.cudaGraphs), and the eager and the captured steps are the same kernels.
The state is torch's too: `state[param]` holds "step", "exp_avg" and "exp_avg_sq" (masking zeroes the
moments at mask changes), and `state_dict()` / `load_state_dict()` use torch.optim.Adam's format: either
loads the other's. (One torch limit: a state written on CUDA says capturable, and torch.optim.Adam refuses to
step a capturable state on the CPU; this class places the step count by its own parameters' device instead.)
`lr` may be changed between eager steps (a schedule), as torch's param_groups[0]["lr"]. A step replayed as a
CUDA graph keeps the `lr` it was captured with: the GAN's optimizers have none (a schedule there would have to
re-capture, as a mask change does).
"""

from typing import Iterable

import torch

MOMENTS = ("exp_avg", "exp_avg_sq")


def _on_cuda(p: torch.Tensor) -> bool:
    """Which formula a parameter takes: torch's capturable multi-tensor one on CUDA, its single-tensor one
    elsewhere."""
    return p.device.type == "cuda"


class Adam:
    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float], eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.eps = float(lr), float(eps)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (self.lr >= 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ValueError(f"Adam needs lr >= 0, betas in [0, 1) and eps > 0; got lr {lr}, betas {betas}, eps {eps}")
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient (the others, and their state, are left alone)."""
        live = [p for p in self.params if p.grad is not None]
        for p in live:
            if p not in self.state:
                self.state[p] = self._fresh_state(p)
        host = [p for p in live if not _on_cuda(p)]
        device = [p for p in live if _on_cuda(p)]
        if host:
            self._step_single(host)
        if device:
            self._step_on_device(device)

    @staticmethod
    def _fresh_state(p: torch.Tensor) -> dict[str, torch.Tensor]:
        """As torch creates it: the step count beside its parameter (host or device), in the default dtype."""
        return {"step": torch.tensor(0.0, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}

    def _step_single(self, params: list[torch.Tensor]) -> None:
        """torch.optim.Adam's single-tensor path: the step count on the host, bias corrections in Python floats."""
        b1, b2 = self.beta1, self.beta2
        for p in params:
            s = self.state[p]
            grad, exp_avg, exp_avg_sq, step_t = p.grad, s["exp_avg"], s["exp_avg_sq"], s["step"]
            step_t += 1
            exp_avg.lerp_(grad, 1 - b1)
            exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            step = step_t.item()
            step_size = self.lr / (1 - b1 ** step)
            bias_correction2_sqrt = (1 - b2 ** step) ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

    def _step_on_device(self, params: list[torch.Tensor]) -> None:
        """torch.optim.Adam's multi-tensor capturable path: no host value depends on the step, so nothing
        synchronizes and a CUDA graph can capture it. Parameters are grouped by device and dtype as torch groups
        them."""
        groups: dict[tuple, list[torch.Tensor]] = {}
        for p in params:
            groups.setdefault((p.device, p.dtype), []).append(p)
        b1, b2 = self.beta1, self.beta2
        for group in groups.values():
            grads = [p.grad for p in group]
            exp_avgs = [self.state[p]["exp_avg"] for p in group]
            exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in group]
            steps = [self.state[p]["step"] for p in group]
            torch._foreach_add_(steps, 1)
            torch._foreach_lerp_(exp_avgs, grads, 1 - b1)
            torch._foreach_mul_(exp_avg_sqs, b2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - b2)
            bias_correction1 = torch._foreach_pow(b1, steps)
            bias_correction2 = torch._foreach_pow(b2, steps)
            torch._foreach_sub_(bias_correction1, 1)
            torch._foreach_sub_(bias_correction2, 1)
            torch._foreach_neg_(bias_correction2)
            torch._foreach_div_(bias_correction1, self.lr)  # -> -step_size, as a reciprocal below
            torch._foreach_reciprocal_(bias_correction1)
            torch._foreach_sqrt_(bias_correction2)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denom, bias_correction2)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_div_(denom, bias_correction1)
            torch._foreach_addcdiv_(group, exp_avgs, denom)

    # -- checkpoints, in torch.optim.Adam's format
    def state_dict(self) -> dict:
        index = {p: i for i, p in enumerate(self.params)}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{"lr": self.lr, "betas": (self.beta1, self.beta2), "eps": self.eps,
                                  "weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None,
                                  "capturable": any(map(_on_cuda, self.params)), "differentiable": False,
                                  "fused": None, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, saved: dict) -> None:
        """Moments and step counts from a torch.optim.Adam state dict (ours or torch's), checked before anything
        changes: one group over exactly these parameters, each state with this parameter's shape, floating-point
        moments, and no setting that changes what the state means (weight decay, AMSGrad, maximize). lr, betas
        and eps stay this optimizer's: a worker checkpoint loads only into a build with the same ones. Tensors
        are copied to the parameter's device and dtype; a step count goes where this optimizer keeps it (host on
        the CPU, device on CUDA), whatever the writer did. An empty state (torch keeps one for a parameter
        its user looked up but never stepped) is a parameter not stepped yet."""
        groups = saved.get("param_groups") if isinstance(saved, dict) else None
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(saved.get("state"), dict):
            raise ValueError("the optimizer state is not one Adam parameter group with its state")
        group, n = groups[0], len(self.params)
        ids = list(group.get("params", ())) if isinstance(group, dict) else []
        if len(ids) != n:
            raise ValueError(f"the optimizer state covers {len(ids)} parameters; this network has {n}")
        if ids != list(range(n)):
            raise ValueError(f"the optimizer state numbers its parameters {ids}, not 0..{n - 1} in order")
        for key in ("weight_decay", "amsgrad", "maximize"):
            if group.get(key):
                raise ValueError(f"the optimizer state is from Adam with {key}={group[key]!r}, which this worker "
                                 "does not run")
        state = {}
        for i, s in saved["state"].items():
            if not (isinstance(i, int) and 0 <= i < n):
                raise ValueError(f"the optimizer state names parameter {i!r}, which this network does not have")
            if isinstance(s, dict) and not s:
                continue
            p = self.params[i]
            if not isinstance(s, dict) or set(s) != {"step", *MOMENTS}:
                raise ValueError(f"the optimizer state of parameter {i} holds {sorted(s) if isinstance(s, dict) else s!r}, "
                                 "not step, exp_avg and exp_avg_sq")
            for key in MOMENTS:
                m = s[key]
                if not isinstance(m, torch.Tensor) or not m.is_floating_point():
                    raise ValueError(f"the optimizer state's {key} of parameter {i} is "
                                     f"{m.dtype if isinstance(m, torch.Tensor) else type(m).__name__}, not a float tensor")
                if m.shape != p.shape:
                    raise ValueError(f"the optimizer state's {key} of parameter {i} has shape {tuple(m.shape)}; "
                                     f"the parameter has {tuple(p.shape)}")
            step = s["step"]
            if isinstance(step, torch.Tensor) and step.numel() == 1 and not step.is_complex():
                step = float(step.detach().cpu().reshape(()))
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not (0 <= step < 2**24 and step == int(step)):
                raise ValueError(f"the optimizer state's step of parameter {i} is {s['step']!r}, not a whole number of steps below 2**24")
            state[p] = {"step": torch.tensor(float(step), device=p.device),
                        **{key: s[key].to(device=p.device, dtype=p.dtype, copy=True) for key in MOMENTS}}
        self.state = state
