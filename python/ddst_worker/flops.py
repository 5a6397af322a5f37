"""Per-layer multiply-accumulate (MAC) counts, measured from one real forward pass of ONE sample.

The counting follows the paper's training-FLOPs accounting (docs/method.md, "Training FLOPs"); the paper
calls these counts FLOPs. Per module that owns parameters:

- Linear: weight in*out per position (a plain [N, in] input has one position); bias out per position.
- Conv (1d/2d/3d): weight in*out*prod(k)*prod(out_spatial)/groups; bias out*prod(out_spatial).
- ConvTranspose: weight in*out*prod(k)*prod(IN_spatial)/groups; bias out*prod(out_spatial).
  A transposed convolution scatters every input pixel through the full kernel to every output channel, so
  in*out*k*k*H_in*W_in is the number of multiply-adds it actually performs (the scattered products that land
  in the cropped padding are included; that is how the kernels compute them). The formula with H_out*W_out
  would overcount a stride-s layer by about s^2. Our paper networks (SNGAN) have no transposed convs; only
  the small DCGANs use them.
- BatchNorm / GroupNorm / LayerNorm / InstanceNorm with affine parameters: features*spatial for the weight
  and again for the bias (= 2*C*H*W for BatchNorm2d), both non-maskable.
- Biases are never maskable.

The weight term of a maskable layer (Linear / Conv / ConvTranspose) is the part that scales with that layer's
density; everything else stays dense. Spectral-norm modules work: hooks see the module itself and the shapes
come from the module's attributes, the counts from the real input/output tensors.

`parameter_macs` turns the per-module rows into one figure per parameter (the `macs` column of `build`'s
`layers`): a maskable weight gets its module's weight term, a bias its module's bias term, a norm's weight
and bias one C*H*W each; anything else (embeddings, gains) 0. Per network they sum to the dense total.

Besides `layer_macs` this module provides `maskable_weights(module)`, the one definition of "maskable
weight" (Linear / Conv / ConvTranspose weights; `weight_orig` under classic spectral norm, the parametrized
original under torch.nn.utils.parametrizations), so other parts of the worker can reuse it.
"""

from __future__ import annotations

import math
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

MASKABLE_TYPES = (nn.Linear, nn.modules.conv._ConvNd)
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def _maskable_param(module: nn.Module) -> tuple[str, torch.Tensor] | None:
    """(relative parameter name, parameter) of a maskable module's weight, or None."""
    if not isinstance(module, MASKABLE_TYPES):
        return None
    # torch.nn.utils.parametrizations.spectral_norm (and any other weight parametrization)
    params = getattr(module, "parametrizations", None)
    if params is not None and "weight" in params:
        return "parametrizations.weight.original", params["weight"].original
    # classic torch.nn.utils.spectral_norm: the trainable tensor is weight_orig, `weight` is derived
    orig = getattr(module, "weight_orig", None)
    if isinstance(orig, nn.Parameter):
        return "weight_orig", orig
    w = getattr(module, "weight", None)
    if isinstance(w, nn.Parameter):
        return "weight", w
    return None


def maskable_weights(module: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """Yield (qualified_parameter_name, parameter) for every maskable weight of `module`, in module order.

    Maskable = the weight of a Linear / Conv* / ConvTranspose* layer. Under classic spectral norm that is
    `<layer>.weight_orig` (the trainable tensor; `<layer>.weight` is recomputed from it every forward), under
    parametrizations it is `<layer>.parametrizations.weight.original`. Names match `named_parameters()`.
    """
    for mod_name, mod in module.named_modules():
        found = _maskable_param(mod)
        if found is None:
            continue
        rel, param = found
        yield (f"{mod_name}.{rel}" if mod_name else rel), param


def maskable_count(module: nn.Module) -> int:
    """Total number of maskable weights."""
    return sum(p.numel() for _, p in maskable_weights(module))


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "convT"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, _NORM_TYPES):
        return "norm"
    return None


def _has_affine(module: nn.Module) -> bool:
    if isinstance(module, nn.LayerNorm):
        return bool(module.elementwise_affine)
    return bool(getattr(module, "affine", False))


def _one_call_macs(module: nn.Module, kind: str, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
    """(weight MACs, bias MACs) of one call of `module` on a batch; counted for the first sample."""
    has_bias = getattr(module, "bias", None) is not None
    if kind == "linear":
        positions = (inp[0].numel() // module.in_features) if inp.dim() > 1 else 1
        w = module.in_features * module.out_features * positions
        b = module.out_features * positions if has_bias else 0
        return w, b
    if kind in ("conv", "convT"):
        k = math.prod(module.kernel_size)
        out_sp = math.prod(out.shape[2:]) if out.dim() > 2 else 1
        if kind == "conv":
            sp = out_sp
        else:
            sp = math.prod(inp.shape[2:]) if inp.dim() > 2 else 1
        w = module.in_channels * module.out_channels * k * sp // module.groups
        b = module.out_channels * out_sp if has_bias else 0
        return w, b
    # normalization: one multiply for the scale and one add for the shift per output element
    if not _has_affine(module):
        return 0, 0
    per_sample = out[0].numel() if out.dim() > 1 else out.numel()
    return per_sample, per_sample


class LayerMacs(list):
    """A list of per-layer rows (dicts) that also carries the totals of the measured forward pass:
    `.total` (dense MACs of one sample), `.weight_total` (maskable weight MACs only) and `.fixed_total`
    (everything that does not scale with density: biases, norms, weights of non-maskable layers)."""

    total: int = 0
    weight_total: int = 0
    fixed_total: int = 0


def _as_single_sample(model: nn.Module, example_input):
    """One-sample input on the model's device: a tensor is taken as batched and its first sample kept; a
    shape tuple (without the batch dim) becomes a zero tensor of shape (1, *shape)."""
    try:
        ref = next(iter(model.parameters()))
        device, dtype = ref.device, ref.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.get_default_dtype()
    if isinstance(example_input, torch.Tensor):
        x = example_input[:1]
        return x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
    if isinstance(example_input, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in example_input):
        return torch.zeros((1, *example_input), device=device, dtype=dtype)
    raise TypeError("example_input must be a batched tensor or a shape tuple without the batch dimension")


def layer_macs(model: nn.Module, example_input) -> LayerMacs:
    """Per-layer dense MACs of one forward pass of one sample.

    `example_input`: a batched tensor (only its first sample is used) or a per-sample shape tuple (a zero
    tensor of shape (1, *shape) is fed). The model runs in eval mode under no_grad, so BatchNorm running
    statistics and spectral-norm power-iteration vectors are left untouched; its train/eval flags are
    restored afterwards.

    Returns a `LayerMacs` list (module order) of rows
        {name, kind, shape, maskable, param, weightMacs, biasMacs, macs, calls}
    - name: qualified module name; kind: linear | conv | convT | bn | norm
    - shape: the weight's shape (of weight_orig under spectral norm); [] for norms without affine params
    - maskable: True for Linear / Conv / ConvTranspose; then weightMacs is the density-scaled part
    - param: qualified name of the maskable weight parameter (as in maskable_weights) or None
    - macs = weightMacs + biasMacs; calls = forward calls seen (a shared module is summed over calls)
    Maskable layers the forward never reached appear with zero MACs and calls 0.
    The list's `.total` is the dense per-sample total.
    """
    x = _as_single_sample(model, example_input)
    rows: dict[str, dict] = {}
    handles = []

    def make_hook(name: str, kind: str):
        def hook(module, inputs, output):
            inp = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(inp, torch.Tensor) or not isinstance(out, torch.Tensor):
                return
            w, b = _one_call_macs(module, kind, inp, out)
            row = rows[name]
            row["weightMacs"] += int(w)
            row["biasMacs"] += int(b)
            row["calls"] += 1

        return hook

    for name, mod in model.named_modules():
        kind = _kind(mod)
        if kind is None:
            continue
        found = _maskable_param(mod)
        if found is not None:
            shape = list(found[1].shape)
            param = f"{name}.{found[0]}" if name else found[0]
        else:
            w = getattr(mod, "weight", None)
            shape = list(w.shape) if isinstance(w, torch.Tensor) else []
            param = None
        rows[name] = {
            "name": name,
            "kind": kind,
            "shape": shape,
            "maskable": found is not None,
            "param": param,
            "weightMacs": 0,
            "biasMacs": 0,
            "macs": 0,
            "calls": 0,
        }
        handles.append(mod.register_forward_hook(make_hook(name, kind)))

    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, t in modes.items():
            m.training = t

    result = LayerMacs()
    for row in rows.values():
        if row["calls"] == 0 and not row["maskable"]:
            continue  # a norm layer the forward never used: leave it out
        row["macs"] = row["weightMacs"] + row["biasMacs"]
        result.append(row)
    result.total = sum(r["macs"] for r in result)
    result.weight_total = sum(r["weightMacs"] for r in result if r["maskable"])
    result.fixed_total = result.total - result.weight_total
    return result


def parameter_macs(model: nn.Module, example_input) -> dict[str, int]:
    """Dense per-sample MACs attributed to each parameter, keyed by its `named_parameters()` name.

    From one layer_macs pass (so model state is left alone, see there): the maskable weight of a Linear /
    Conv / ConvTranspose gets the module's weightMacs, its bias the biasMacs; a norm's weight gets the scale
    term and its bias the shift term (C*H*W each for BatchNorm2d). Parameters no row accounts for are absent
    (count them as 0). The values sum to the pass's `.total`, since every row's two terms go somewhere:
    a row's biasMacs is nonzero only if the module has a bias parameter.
    """
    modules = dict(model.named_modules())
    out: dict[str, int] = {}

    def add(name: str, macs: int) -> None:
        out[name] = out.get(name, 0) + int(macs)  # += : a parameter shared by two modules pays for both

    for row in layer_macs(model, example_input):
        prefix = f"{row['name']}." if row["name"] else ""
        module = modules[row["name"]]
        weight = row["param"] if row["maskable"] else prefix + "weight"
        if row["weightMacs"]:
            add(weight, row["weightMacs"])
        if row["biasMacs"]:
            assert isinstance(getattr(module, "bias", None), nn.Parameter), row["name"]
            add(prefix + "bias", row["biasMacs"])
    return out


def dense_total(rows: Sequence[Mapping]) -> int:
    """Dense per-sample MACs of rows returned by layer_macs."""
    return int(sum(r["macs"] for r in rows))


def macs_at_density(rows: Sequence[Mapping], densities: Mapping[str, float]) -> float:
    """Per-sample MACs with each maskable layer's weight term scaled by its density.

    `densities` may be keyed by module name (`blocks.0.conv1`) or by parameter name (`blocks.0.conv1.weight_orig`,
    as maskable_weights yields); maskable layers absent from it count as dense.
    """
    total = 0.0
    for r in rows:
        w = float(r["weightMacs"])
        if r["maskable"]:
            d = densities.get(r["name"], densities.get(r["param"], 1.0)) if r["param"] else densities.get(r["name"], 1.0)
            w *= float(d)
        total += w + float(r["biasMacs"])
    return total
