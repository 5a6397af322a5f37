"""The FID Inception network: InceptionV3 as in the TF graph "inception-2015-12-05" that the FID and
Inception Score literature uses, in the layout of pytorch-fid's port (pt_inception-2015-12-05-6726825d.pth)
so that file's state_dict loads as is.

It is the torchvision-style InceptionV3 trunk (no aux head) with the TF graph's quirks:
- the 35x35, 17x17 and first 8x8 mixed blocks average-pool their pool branch without counting the zero
  padding (TF's avg_pool; count_include_pad=False);
- the last 8x8 block (Mixed_7c) max-pools its pool branch;
- the classifier has 1008 outputs (the TF graph's ImageNet head with 8 unused classes).

Inputs are images in [-1, 1], the generator's tanh range. pytorch-fid maps [0, 1] -> 2x-1 after resizing;
bilinear resizing is affine, so resizing a [-1, 1] image gives the same result. Nothing is downloaded:
the weights come from a file the user names.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_HELP = (f"download {WEIGHTS_NAME} from the pytorch-fid GitHub releases "
                "(github.com/mseitzer/pytorch-fid/releases, tag fid_weights) on a machine with internet "
                "and pass its path as eval.inception")


class InceptionWeightsMissing(FileNotFoundError):
    pass


class InceptionWeightsMismatch(ValueError):
    pass


class BasicConv2d(nn.Module):
    """conv (no bias) -> BN (TF's eps 1e-3) -> ReLU; the names conv/bn match the weight file."""

    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def tf_avg_pool(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):  # 35x35 blocks
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(tf_avg_pool(x))], 1)


class InceptionB(nn.Module):  # 35x35 -> 17x17 reduction
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):  # 17x17 blocks with factorized 7x7 convolutions
    def __init__(self, cin, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(tf_avg_pool(x))], 1)


class InceptionD(nn.Module):  # 17x17 -> 8x8 reduction
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _FIDInceptionE(nn.Module):  # 8x8 blocks with expanded filter banks
    def __init__(self, cin):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def pool(self, x):
        raise NotImplementedError

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(self.pool(x))], 1)


class FIDInceptionE_1(_FIDInceptionE):  # Mixed_7b
    def pool(self, x):
        return tf_avg_pool(x)


class FIDInceptionE_2(_FIDInceptionE):  # Mixed_7c: the TF graph max-pools here
    def pool(self, x):
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInceptionV3(nn.Module):
    """forward(x [N,3,299,299] in [-1,1]) -> pool3 features [N, 2048]; `fc` holds the 1008-way head."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))  # pool3: global average over the 8x8 map


def _check_state_dict(model: nn.Module, state: dict, path: Path, show: int = 5) -> None:
    """Name the first few missing, unexpected and wrongly shaped entries. BatchNorm's
    num_batches_tracked counters are ignored: they never affect eval-mode outputs."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    have = {k: tuple(v.shape) for k, v in state.items()
            if isinstance(v, torch.Tensor) and not k.endswith("num_batches_tracked")}
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    shapes = [f"{k}: file {have[k]} vs model {want[k]}" for k in want if k in have and have[k] != want[k]]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if items:
            more = f" (+{len(items) - show} more)" if len(items) > show else ""
            problems.append(f"{label} {len(items)}: {', '.join(items[:show])}{more}")
    if problems:
        raise InceptionWeightsMismatch(
            f"{path} is not the FID Inception state_dict ({WEIGHTS_NAME}): " + "; ".join(problems)
            + f". To get the right file: {WEIGHTS_HELP}")


def load_inception(weights_path, device="cpu") -> FIDInceptionV3:
    path = Path(weights_path) if weights_path else None
    if path is None or not path.is_file():
        raise InceptionWeightsMissing(f"FID Inception weights not found at {weights_path!r}: {WEIGHTS_HELP}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise InceptionWeightsMismatch(f"{path} holds a {type(state).__name__}, not a state_dict. {WEIGHTS_HELP}")
    model = FIDInceptionV3()
    _check_state_dict(model, state, path)
    model.load_state_dict(state, strict=False)  # checked above; strict would trip on num_batches_tracked
    return model.to(device).eval().requires_grad_(False)


def _as_batch(images, start, stop, device) -> torch.Tensor:
    x = images[start:stop]
    x = torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else x  # copy: input may be read-only
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 3, H, W] (or [N, 1, H, W]), got {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grayscale data sets: the same plane in R, G and B
    if x.shape[2:] != (299, 299):
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)  # as pytorch-fid
    return x


@torch.inference_mode()
def features_and_logits(model: FIDInceptionV3, images, batch: int = 50, unbiased_logits: bool = True):
    """images [N, 3, H, W] in [-1, 1] (tensor on any device, or numpy) -> (pool3 features [N, 2048] float64,
    logits [N, 1008] float64), both numpy.

    The logits leave out the fc bias by default, as the original Inception Score code does (it multiplies
    pool3 by the softmax weight matrix only) and torch-fidelity's "logits_unbiased" with it."""
    device = next(model.parameters()).device
    feats, logits = [], []
    for start in range(0, len(images), batch):
        f = model(_as_batch(images, start, start + batch, device))
        out = f @ model.fc.weight.T if unbiased_logits else model.fc(f)
        feats.append(f.double().cpu())
        logits.append(out.double().cpu())
    if not feats:
        return np.zeros((0, 2048)), np.zeros((0, 1008))
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()
