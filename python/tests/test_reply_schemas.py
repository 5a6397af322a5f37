"""Every op's real reply, from a real worker over the socket, against schemas/reply.schema.json (generated from
the zod reply types): the envelope, and the result under $defs[op], which is strict, so a field the worker sends
and the orchestrator's schema lacks (or the reverse) fails here."""

import json
import os

import jsonschema
import pytest

from conftest import WorkerProcess
from test_server import BUILD

@pytest.fixture(scope="module")
def session(schemas):
    with open(schemas / "reply.schema.json") as f:
        schema = json.load(f)
    with WorkerProcess(schemas) as w:
        yield w.client, schema, w.dir


def checked(client, schema, op, args=None):
    """Sends op, validates every reply header (progress events too) and the ok result; returns the result."""
    header, _, progress, _ = client.reply(client.send(op, args))
    envelope = {k: v for k, v in schema.items() if k != "$defs"}
    jsonschema.validate(header, envelope)
    for p in progress:
        jsonschema.validate({"v": header["v"], "id": header["id"], "kind": "progress", "progress": p}, envelope)
    assert header["kind"] == "ok", header
    jsonschema.validate(header["result"], schema["$defs"][op])
    return header["result"]


def test_error_replies_match_the_envelope(session, schemas):
    client, schema, _ = session
    envelope = {k: v for k, v in schema.items() if k != "$defs"}
    header, _ = client.call("no_such_op")
    jsonschema.validate(header, envelope)
    assert header["kind"] == "error"


def test_every_op_replies_as_its_schema_says(session):
    client, schema, tmp = session
    assert set(schema["$defs"]) == {"hello", "ping", "build", "setMasks", "train", "setDensity", "dstStep", "stats",
                                    "save", "load", "interrupt", "evaluate", "sample", "shutdown"}
    checked(client, schema, "hello")
    checked(client, schema, "ping")
    layers = checked(client, schema, "build", BUILD)["layers"]
    maskable = {net: {l["name"]: 0.5 for l in layers if l["net"] == net and l["maskable"]}
                for net in ("generator", "discriminator")}
    checked(client, schema, "setMasks", maskable)
    checked(client, schema, "train", {"start": 1, "iterations": 20, "probeEvery": 5})
    checked(client, schema, "setDensity", {"net": "discriminator", "target": 0.4, "growth": "global_gradient"})
    checked(client, schema, "dstStep", {"net": "generator", "dropRate": 0.3, "prune": "global_magnitude",
                                        "growth": "global_gradient", "alpha": 0.5})
    checked(client, schema, "stats")
    path = os.path.join(tmp, "ckpt.pt")
    checked(client, schema, "save", {"path": path})
    checked(client, schema, "load", {"path": path})
    checked(client, schema, "interrupt")
    checked(client, schema, "evaluate", {"metrics": ["toy"], "samples": 200, "seed": 0, "batchSize": 100,
                                         "batchNorm": "batch", "reference": "train", "cacheDir": tmp,
                                         "picture": os.path.join(tmp, "p.png")})
    checked(client, schema, "sample", {"n": 5, "seed": 0, "batchSize": 100, "batchNorm": "batch"})
    checked(client, schema, "shutdown")
