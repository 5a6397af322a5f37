"""Request header validation against schemas/request.schema.json (generated from the zod schemas).

The schema is a union over `op` (zod's discriminated union becomes `oneOf`, each branch with a
`const` op). Validating against the whole union only says "matches no branch", so we pick the
branch for the header's op and validate against it alone: errors then name the offending paths.
"""

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from .errors import WorkerError


def _resolve(root: dict, node: dict) -> dict:
    """Follow local `$ref`s ("#/$defs/X") until a schema without one."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/") and seen < 64:
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, seen = target, seen + 1
    return node


def _branches(root: dict, node: dict) -> dict[str, dict]:
    """op name -> the object schema for requests with that op."""
    node = _resolve(root, node)
    found = {}
    for key in ("oneOf", "anyOf"):
        for sub in node.get(key, []):
            found.update(_branches(root, sub))
    op = _resolve(root, node.get("properties", {}).get("op", {}))
    names = [op["const"]] if "const" in op else op.get("enum", [])
    for name in names:
        found[name] = node
    return found


def _path(parts) -> str:
    return ".".join(str(p) for p in parts)


def _meant(union: dict, instance: dict) -> dict | None:
    """The branch of a (nested) oneOf that `instance` names by its constant fields (a model's `name` and
    `variant`, a data set's `name`), or None when it names none."""
    for option in union.get("oneOf", []):
        if "oneOf" in option:
            found = _meant(option, instance)
            if found is not None:
                return found
            continue
        tags = {k: p for k, p in option.get("properties", {}).items() if "const" in p or k == "name"}
        if tags and all(k in instance and (instance[k] == p["const"] if "const" in p else instance[k] in p.get("enum", ()))
                        for k, p in tags.items()):
            return option
    return None


def _describe(error) -> list[dict]:
    """One {path, message} per offending location; missing and unexpected keys name the key itself."""
    base = list(error.absolute_path)
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        # A spec that says which branch it means gets that branch's errors, not "valid under none".
        branch = _meant(error.schema, error.instance)
        if branch is not None:
            inner = [d for e in Draft202012Validator(branch).iter_errors(error.instance) for d in _describe(e)]
            return [{**d, "path": _path(base + ([d["path"]] if d["path"] else []))} for d in inner]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return [{"path": _path(base + [k]), "message": "required"} for k in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            return [{"path": _path(base + [k]), "message": "unexpected property"} for k in extra]
    return [{"path": _path(base), "message": error.message}]


class RequestValidator:
    def __init__(self, schema_dir: Path):
        path = Path(schema_dir) / "request.schema.json"
        self.root = json.loads(path.read_text())
        Draft202012Validator.check_schema(self.root)
        defs = {k: self.root[k] for k in ("$defs", "definitions") if k in self.root}
        # One compiled validator per op; each branch carries the root's $defs so local refs resolve.
        self.by_op = {op: Draft202012Validator({**branch, **defs})
                      for op, branch in _branches(self.root, self.root).items()}
        self.whole = Draft202012Validator(self.root)

    @property
    def ops(self) -> set[str]:
        return set(self.by_op)

    def knows(self, op) -> bool:
        return not self.by_op or op in self.by_op

    def validate(self, header: dict) -> None:
        """Raise invalid_request listing every offending path (e.g. "args.target")."""
        op = header.get("op")
        if self.by_op and not isinstance(op, str):
            errors = [{"path": "op", "message": f"must be one of {sorted(self.by_op)}"}]
        else:
            validator = self.by_op.get(op, self.whole)
            found = [d for e in validator.iter_errors(header) for d in _describe(e)]
            # jsonschema reports each missing key as its own error, each carrying the whole
            # `required` list, so the same entry can come out several times: keep one of each.
            errors = [dict(t) for t in dict.fromkeys(tuple(d.items()) for d in found)]
        if errors:
            errors.sort(key=lambda d: d["path"])
            paths = ", ".join(d["path"] or "(header)" for d in errors)
            raise WorkerError("invalid_request", f"request does not match the schema at: {paths}",
                              {"errors": errors})
