import pytest

from ddst_worker import PROTOCOL_VERSION as V

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
    validator.validate({"v": V, "id": "a", "seq": 1, "op": "hello", "args": {}, "tensors": []})
    validator.validate({"v": V, "id": "b", "seq": 1, "op": "train", "args": {"start": 1, "iterations": 10, "probeEvery": 5}})
    validator.validate({"v": V, "id": "c", "seq": 1, "op": "dstStep", "args": {
        "net": "generator", "dropRate": 0.3, "prune": "set", "growth": "global_gradient", "alpha": 0.5}})


def test_errors_name_each_offending_path(validator):
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": "setDensity",
                                 "args": {"net": "critic", "target": "high", "growth": "global_random"}})
    assert {e["path"] for e in errs} == {"args.net", "args.target"}
    # setDensity grows by a global criterion only: the schema is what refuses the others.
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": "setDensity",
                                 "args": {"net": "generator", "target": 0.5, "growth": "random"}})
    assert {e["path"] for e in errs} == {"args.growth"}
    errs = errors_of(validator, {"v": V, "seq": 1, "op": "train", "args": {"start": 1}})
    assert {e["path"] for e in errs} == {"id", "args.iterations", "args.probeEvery"}
    errs = errors_of(validator, {"v": V, "id": "a", "op": "hello", "args": {}})
    assert errs == [{"path": "seq", "message": "required"}]
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": "hello", "args": {},
                                 "tensors": [{"name": "x", "dtype": "float16", "shape": [2]}]})
    assert [e["path"] for e in errs] == ["tensors.0.dtype"]
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": 7, "args": {}})
    assert [e["path"] for e in errs] == ["op"]


def test_build_names_every_model_and_data_field(validator):
    """The worker has no defaults of its own: a model, data or train spec leaving a field out is refused by
    the schema, and the spec `ddst run` sends (every default filled in) passes."""
    from ddst_worker.spec_defaults import complete_build
    train = {"batchSize": 8, "genBatchSize": 8, "nCritic": 1, "loss": "hinge", "lrG": 2e-4, "lrD": 2e-4,
             "betas": [0.0, 0.9], "ema": 0.999}
    build = {"seed": 1, "device": "cpu", "model": {"name": "sngan48", "variant": "resnet48"},
             "data": {"name": "ring8"}, "train": train}
    validator.validate({"v": V, "id": "a", "seq": 1, "op": "build", "args": complete_build(build)})
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": "build", "args": build})
    assert {e["path"] for e in errs} == {"args.model.latentDim", "args.model.spectralNorm", "args.data.std",
                                         "args.data.radius", "args.train.precision", "args.train.tf32",
                                         "args.train.cudaGraphs", "args.train.channelsLast", "args.train.compile"}
    lottery = complete_build({**build, "model": {"name": "sngan48"}})
    assert lottery["model"]["gChannels"] == 256
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": "build", "args": {
        **lottery, "model": {k: v for k, v in lottery["model"].items() if k != "gChannels"}}})
    assert errs == [{"path": "args.model.gChannels", "message": "required"}]
    # One that names no branch (no such model) still says where.
    errs = errors_of(validator, {"v": V, "id": "a", "seq": 1, "op": "build", "args": {**lottery, "model": {"name": "resnet9000"}}})
    assert [e["path"] for e in errs] == ["args.model"]
