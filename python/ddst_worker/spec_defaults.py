"""Complete model and data specs for the in-process entry points (bench, bench_eval, the tests), as the
orchestrator sends them: the fields named, every other one at the experiment file's default. The defaults
are read from the generated experiment schema (schemas/experiment.schema.json, from the zod specs in
src/vocabulary/networks.ts), never written here. The worker's request path does not use this module: a
request names every field or is refused by the schema."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path


@cache
def _experiment() -> dict:
    schemas = Path(os.environ.get("DDST_SCHEMAS") or Path(__file__).resolve().parents[2] / "schemas")
    return json.loads((schemas / "experiment.schema.json").read_text())


def _accepts(prop: dict, value) -> bool:
    if "const" in prop:
        return prop["const"] == value
    return value in prop.get("enum", [value])


def _branch(union: dict, spec: dict) -> dict:
    """The object schema of a (nested) oneOf whose discriminating constants match `spec`; a discriminator
    the spec leaves out matches its default."""
    for option in union["oneOf"]:
        if "oneOf" in option:
            try:
                return _branch(option, spec)
            except LookupError:
                continue
        props = option["properties"]
        if all(_accepts(p, spec.get(k, p.get("default"))) for k, p in props.items() if "const" in p or "enum" in p):
            return option
    raise LookupError(f"no spec in the schema matches {spec!r}")


def _complete(union: dict, spec: dict) -> dict:
    props = _branch(union, spec)["properties"]
    return {**{k: p["default"] for k, p in props.items() if "default" in p}, **spec}


def complete_model(spec: dict) -> dict:
    return _complete(_experiment()["properties"]["model"], spec)


def complete_data(spec: dict) -> dict:
    return _complete(_experiment()["properties"]["data"], spec)


def complete_train(spec: dict) -> dict:
    props = _experiment()["properties"]["train"]["properties"]
    return {**{k: p["default"] for k, p in props.items() if "default" in p}, **spec}


def complete_build(args: dict) -> dict:
    """`build` arguments with the model, data and train specs completed."""
    return {**args, "model": complete_model(args["model"]), "data": complete_data(args["data"]),
            "train": complete_train(args["train"])}
