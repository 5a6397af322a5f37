"""Checkpoints of the whole worker state (`save` / `load`).

A fresh worker built with the same build args that loads a checkpoint continues exactly as the worker
that wrote it would have: on CPU, bit for bit (same torch build and thread count). The file holds only
tensors and plain data, so it is read with torch.load(weights_only=True) and no object is ever unpickled.

    format, version   what this file is
    iter              the last iteration completed
    build             the `build` args; `load` refuses a session built with other ones
    dataShape         one sample's shape: run_access builds the networks from it without the data
    nets.generator, nets.discriminator:
        model         state_dict: parameters, BatchNorm statistics, spectral-norm u and v
        optimizer     Adam's state_dict: moments and step counts
        masks, ever   per maskable layer, its mask and its ITOP (ever active) mask, bool
    ema               the generator EMA's state_dict, None when the EMA is off
    rng               every random stream that shapes what comes next:
        torch, cuda   torch's global CPU generator (model init) and, on CUDA, the device's (else None)
        noise         the z stream (one z per G step, drawn whether or not the step is probed)
        masks         random masks and random growth
        data          the data source's streams (see data_state)
Nothing else carries over from one op to the next: train.py keeps nothing between calls, MaskSet's
cached inverse masks are rebuilt from the masks, and every gradient is zeroed before it is used.
`evaluate`'s Inception network, domain classifiers and reference statistics (evaluate.py) are caches,
not state: they are rebuilt, or read from cacheDir, when a fresh worker first needs them.
"""

import contextlib
import errno
import io
import os

import torch

from .errors import WorkerError

FORMAT = "ddst-worker-checkpoint"
VERSION = 1
NETS = ("generator", "discriminator")


def _bad(message: str, **detail):
    return WorkerError("bad_value", message, detail)


# ---- the data source's random state -------------------------------------------------------------

def data_state(data) -> dict:
    """A data source with more state than its torch.Generator attributes (a shuffled order and a cursor,
    say) provides state_dict() -> tensors and plain data, and load_state_dict(state) (which gets CPU
    tensors); for any other source its state is its generators."""
    if hasattr(data, "state_dict"):
        return data.state_dict()
    return {name: g.get_state() for name, g in vars(data).items() if isinstance(g, torch.Generator)}


def set_data_state(data, state: dict) -> None:
    if hasattr(data, "load_state_dict"):
        data.load_state_dict(state)
        return
    mine = {name for name, g in vars(data).items() if isinstance(g, torch.Generator)}
    if mine != set(state):
        raise ValueError(f"data streams {sorted(state)} in the checkpoint, {sorted(mine)} in this build")
    for name, s in state.items():
        getattr(data, name).set_state(s)


# ---- save ----------------------------------------------------------------------------------------

def state_of(session) -> dict:
    gan = session.gan
    return {
        "format": FORMAT, "version": VERSION, "iter": session.iter,
        "build": session.build_args, "dataShape": list(session.data_shape),
        "nets": {name: {"model": net.model.state_dict(), "optimizer": net.optimizer.state_dict(),
                        **net.masks.state_dict()}
                 for name, net in gan.nets().items()},
        "ema": gan.ema.model.state_dict() if gan.ema is not None else None,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if gan.device == "cuda" else None,
                "noise": gan.noise.get_state(), "masks": session.mask_gen.get_state(),
                "data": data_state(gan.data)},
    }


def save(session, path: str) -> dict:
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half of one.
    The parent directory is made if missing."""
    state = state_of(session)
    tmp = path + ".tmp"  # same directory, so the rename stays on one file system
    folder = os.path.dirname(os.path.abspath(path))
    # Serialized in memory first, then written as plain bytes: a full disk is then the OS's "No space left
    # on device" naming the file, not an error from inside torch's zip writer.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)  # makes the rename itself durable
    except (OSError, RuntimeError) as e:  # RuntimeError: torch's zip writer, e.g. on a full disk
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _bad(f"cannot write checkpoint {path}: {getattr(e, 'strerror', None) or e}", path=path)
    return {"path": path, "bytes": os.path.getsize(path), "iter": session.iter}


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):  # not every platform opens directories
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- load ----------------------------------------------------------------------------------------

def read(path: str) -> dict:
    """The checkpoint as a dict, or bad_value naming the file and the fault. weights_only=True: a file
    holding anything but tensors and plain data is refused, never executed. Tensors land on the CPU:
    load_state_dict copies them to wherever the session's tensors live (Adam's step counts included: on the
    host for a CPU run, on the device for a CUDA one, as adam.py keeps them), and RNG states must be CPU tensors."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise _bad(f"checkpoint {path} does not exist", path=path, reason="unreadable")
    except (OSError, MemoryError) as e:
        if isinstance(e, OSError) and e.errno not in _MACHINE_ERRNOS:  # torch reads a truncated file as EINVAL
            raise _unreadable(path, e)
        # The machine, not the file: a fault that passes must not cost the checkpoint.
        raise _bad(f"checkpoint {path} could not be read here ({getattr(e, 'strerror', None) or type(e).__name__}); "
                   "the file may be intact: fix the cause and resume again", path=path, error=type(e).__name__,
                   reason="io")
    except Exception as e:  # torch reports truncation, corruption and refused objects in many types
        raise _unreadable(path, e)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise _bad(f"{path} is not a ddst worker checkpoint", path=path, reason="unreadable")
    if ckpt.get("version") != VERSION:
        raise _bad(f"checkpoint {path} has format version {ckpt.get('version')!r}; this worker reads {VERSION}",
                   path=path, version=ckpt.get("version"))
    missing = sorted({"iter", "build", "dataShape", "nets", "ema", "rng"} - set(ckpt))
    if missing:
        raise _bad(f"checkpoint {path} lacks {missing}", path=path, missing=missing)
    complete_legacy_build(ckpt["build"])
    return ckpt


# Read faults of the machine rather than the file: permission, I/O, memory, descriptors, a stale network mount.
_MACHINE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ESTALE,
                   errno.EAGAIN, errno.ETIMEDOUT, errno.EINTR}


def load_fault(e: Exception, path: str) -> str:
    """What a failed torch.load says about the file, in words (torch's own texts name internals: a miniz error,
    a pickle opcode, or advice to load the file unsafely, which is not ours to give)."""
    try:
        if os.path.getsize(path) == 0:
            return "an empty file"
    except OSError:
        pass
    text = str(e)
    # torch's zip reader meets the end of a cut file as EINVAL (torch 2.13) or a missing central directory.
    cut = isinstance(e, EOFError) or (isinstance(e, OSError) and e.errno == errno.EINVAL)
    if cut or "central directory" in text or "unexpected EOF" in text:
        return f"truncated or damaged ({type(e).__name__})"
    if "Weights only load failed" in text:
        return "not a file of tensors and plain data that torch.save wrote (refused: loading it could run code)"
    return f"not a PyTorch file of tensors ({type(e).__name__}: {_reason(e)})"


def _unreadable(path: str, e: Exception) -> WorkerError:
    return _bad(f"checkpoint {path} cannot be read: {load_fault(e, path)}", path=path, error=type(e).__name__,
                reason="unreadable")


# Checkpoints (and config.json files) written before the orchestrator sent every field recorded build args
# without some of them; what the worker then did with a field left out is filled in here, so such runs still
# resume and open. Nothing new relies on these: today's requests carry every field (the schema says so).
_LEGACY_MODEL = {
    "mlp2d": {"latentDim": 2},
    "sngan": {"variant": "lottery", "latentDim": 128, "spectralNorm": True},
    "sngan/lottery": {"gChannels": 256, "dChannels": 128},
    "dcgan": {"latentDim": 64, "width": 32, "spectralNorm": False},
}
_LEGACY_DATA = {"ring8": {"std": 0.02}, "grid25": {"std": 0.05},
                "cifar10": {"hflip": False}, "stl10": {"hflip": False}, "folder": {"hflip": False}}


def complete_legacy_model(model) -> None:
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        family = model["name"].rstrip("0123456789")
        for key, value in _LEGACY_MODEL.get(family, {}).items():
            model.setdefault(key, value)
        for key, value in _LEGACY_MODEL.get(f"{family}/{model.get('variant')}", {}).items():
            model.setdefault(key, value)


def complete_legacy_build(build: dict) -> None:
    complete_legacy_model(build.get("model"))
    data = build.get("data")
    if isinstance(data, dict):
        for key, value in _LEGACY_DATA.get(data.get("name"), {}).items():
            data.setdefault(key, value)
    t = build.get("train")
    if isinstance(t, dict):  # G's batch was D's, the EMA decay 0.999, fp32 eager steps; such a run resumes with
        t.setdefault("genBatchSize", t.get("batchSize"))  # TF32 (it had cuDNN's default: TF32 convolutions)
        t.setdefault("ema", 0.999)
        t.setdefault("precision", "fp32")
        t.setdefault("tf32", True)
        t.setdefault("cudaGraphs", False)
        t.setdefault("channelsLast", False)
        t.setdefault("compile", False)


def _reason(e: Exception) -> str:
    """The specific line of an exception's message: torch's weights_only refusal wraps it in advice to load
    the file unsafely, which is not ours to give."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [l.strip() for l in str(e).splitlines() if l.strip() and not l.strip().startswith(boilerplate)]
    return lines[0] if lines else str(e).strip()


_ABSENT = "(absent)"


def differences(saved, given, at: str = "") -> list[dict]:
    """Where two JSON-like values differ, as [{key, checkpoint, build}] with dotted keys."""
    if isinstance(saved, dict) and isinstance(given, dict):
        return [d for k in sorted(set(saved) | set(given), key=str)
                for d in differences(saved.get(k, _ABSENT), given.get(k, _ABSENT), f"{at}.{k}" if at else str(k))]
    return [] if saved == given else [{"key": at, "checkpoint": saved, "build": given}]


# How a step is executed, not what it computes: a checkpoint continues under either value.
EXECUTION = {"train.cudaGraphs", "train.channelsLast", "train.compile"}


def check_build(ckpt: dict, args: dict, path: str, ignore=()) -> None:
    diff = [d for d in differences(ckpt["build"], args)
            if d["key"].split(".")[0] not in ignore and d["key"] not in EXECUTION]
    if diff:
        said = "; ".join(f"{d['key']} is {d['checkpoint']!r} there, {d['build']!r} here" for d in diff)
        raise _bad(f"checkpoint {path} was written by a worker built with other args ({said}); "
                   "build with the checkpoint's args, then load", path=path, differences=diff)


def restore(session, ckpt: dict, path: str, rng: bool = True) -> None:
    """Put the checkpoint's state into a built session; rng=False leaves the random streams alone (to
    look at a run, not to continue it: the device may differ, the data may be a stand-in). A failure
    part-way leaves a session half restored, so it is unbuilt instead."""
    gan = session.gan
    try:
        for name, net in gan.nets().items():
            saved = ckpt["nets"][name]
            net.model.load_state_dict(saved["model"])
            net.optimizer.load_state_dict(saved["optimizer"])
            net.masks.load_state_dict(saved)
        if (gan.ema is None) != (ckpt["ema"] is None):
            raise ValueError("the generator EMA is on in one of the checkpoint and this build, off in the other")
        if gan.ema is not None:
            gan.ema.model.load_state_dict(ckpt["ema"])
        if rng:
            r = ckpt["rng"]
            torch.set_rng_state(r["torch"])
            if gan.device == "cuda" and r["cuda"] is not None:
                torch.cuda.set_rng_state(r["cuda"])
            gan.noise.set_state(r["noise"])
            session.mask_gen.set_state(r["masks"])
            set_data_state(gan.data, r["data"])
        session.iter = int(ckpt["iter"])
    except Exception as e:
        session.gan = None
        raise _bad(f"checkpoint {path} does not fit this build ({type(e).__name__}: {e}); "
                   "the session is unbuilt now: send build again", path=path) from e


def load(session, path: str) -> int:
    """`load`: the session must have been built with the checkpoint's build args. -> the iteration."""
    ckpt = read(path)
    check_build(ckpt, session.build_args, path)
    restore(session, ckpt, path)
    return session.iter
