import pytest

from ddst_worker.errors import WorkerError
from ddst_worker.validate import RequestValidator

OPS = {"hello", "ping", "build", "setMasks", "train", "setDensity", "dstStep", "stats", "sample", "shutdown"}


@pytest.fixture(scope="module")
def validator(schemas):
    return RequestValidator(schemas)


def errors_of(validator, header):
    with pytest.raises(WorkerError) as e:
        validator.validate(header)
    assert e.value.code == "invalid_request"
    return e.value.detail["errors"]


def test_schema_covers_every_protocol_op(validator):
    assert OPS <= validator.ops


def test_valid_requests_pass(validator):
    validator.validate({"v": 1, "id": "a", "op": "hello", "args": {}, "tensors": []})
    validator.validate({"v": 1, "id": "b", "op": "train", "args": {"start": 1, "iterations": 10, "probeEvery": 5}})
    validator.validate({"v": 1, "id": "c", "op": "dstStep", "args": {
        "net": "generator", "dropRate": 0.3, "prune": "set", "growth": "global_gradient", "alpha": 0.5}})


def test_errors_name_each_offending_path(validator):
    errs = errors_of(validator, {"v": 1, "id": "a", "op": "setDensity",
                                 "args": {"net": "critic", "target": "high", "growth": "global_random"}})
    assert {e["path"] for e in errs} == {"args.net", "args.target"}
    # setDensity grows by a global criterion only: the schema is what refuses the others.
    errs = errors_of(validator, {"v": 1, "id": "a", "op": "setDensity",
                                 "args": {"net": "generator", "target": 0.5, "growth": "random"}})
    assert {e["path"] for e in errs} == {"args.growth"}
    errs = errors_of(validator, {"v": 1, "op": "train", "args": {"start": 1}})
    assert {e["path"] for e in errs} == {"id", "args.iterations", "args.probeEvery"}
    errs = errors_of(validator, {"v": 1, "id": "a", "op": "hello", "args": {},
                                 "tensors": [{"name": "x", "dtype": "float16", "shape": [2]}]})
    assert [e["path"] for e in errs] == ["tensors.0.dtype"]
    errs = errors_of(validator, {"v": 1, "id": "a", "op": 7, "args": {}})
    assert [e["path"] for e in errs] == ["op"]
