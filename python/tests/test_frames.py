import numpy as np
import pytest
import torch

from ddst_worker.errors import WorkerError
from ddst_worker.frames import DTYPES, decode, decode_all, encode, encode_all


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_roundtrip_every_dtype(dtype):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 2)) * 50).astype(DTYPES[dtype])
    desc, data = encode("x", arr)
    assert desc == {"name": "x", "dtype": dtype, "shape": [3, 4, 2]}
    assert len(data) == arr.size * DTYPES[dtype].itemsize
    out = decode(desc, data)
    assert out.dtype == DTYPES[dtype] and np.array_equal(out, arr)
    out[0] = 0  # decoded arrays are writable copies


def test_torch_tensors_non_contiguous_and_big_endian_go_out_little_endian_c_order():
    t = torch.arange(12, dtype=torch.float32).view(3, 4).t()  # non-contiguous view
    desc, data = encode("t", t)
    assert desc["shape"] == [4, 3]
    assert np.array_equal(decode(desc, data), t.numpy())
    big = np.arange(5, dtype=">i4")
    desc, data = encode("b", big)
    assert desc["dtype"] == "int32" and data == np.arange(5, dtype="<i4").tobytes()
    desc, data = encode("flag", torch.tensor([True, False]))
    assert desc["dtype"] == "bool" and data == b"\x01\x00"


def test_scalar_and_empty_shapes():
    desc, data = encode("s", np.float64(2.5))
    assert desc["shape"] == [] and decode(desc, data) == 2.5
    desc, data = encode("e", np.zeros((0, 4)))
    assert desc["shape"] == [0, 4] and data == b"" and decode(desc, data).shape == (0, 4)


def test_wrong_byte_length_is_bad_tensor():
    desc, data = encode("x", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(WorkerError) as e:
        decode(desc, data[:-1])
    assert e.value.code == "bad_tensor" and e.value.detail == {"name": "x", "expected": 24, "got": 23}
    with pytest.raises(WorkerError) as e:
        decode(desc, data + b"\x00" * 4)
    assert e.value.code == "bad_tensor"


def test_bad_descriptors_and_frame_count():
    for desc in ({"name": "x", "dtype": "float16", "shape": [1]},
                 {"name": "x", "dtype": "float32", "shape": [-1]},
                 {"name": "x", "dtype": "float32", "shape": "3"}):
        with pytest.raises(WorkerError) as e:
            decode(desc, b"\x00" * 4)
        assert e.value.code == "bad_tensor"
    descs, frames = encode_all([("a", np.ones(2)), ("b", np.ones(3, dtype=np.int64))])
    assert set(decode_all(descs, frames)) == {"a", "b"}
    with pytest.raises(WorkerError) as e:
        decode_all(descs, frames[:1])
    assert e.value.code == "bad_tensor"
    with pytest.raises(WorkerError):
        encode("f16", np.zeros(2, dtype=np.float16))
