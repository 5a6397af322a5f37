"""The benchmark entry point prints one JSON object with the documented fields."""

import json

from ddst_worker import bench


def test_bench_prints_one_json_object(capsys):
    assert bench.main(["--model", "mlp2d", "--batch", "8", "--iters", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    r = json.loads(out[0])
    assert {"denseIterS", "maskedIterS", "dstStepS", "maskedOverDense", "dstOverMaskedIter"} <= set(r)
    assert r["model"] == "mlp2d" and r["iters"] == 2 and len(r["samples"]["dstStepS"]) == 2
    assert r["maskedOverDense"] == r["maskedIterS"] / r["denseIterS"] > 0
