import os
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def schemas() -> Path:
    """The committed request schema generated from the zod sources (`npm run schemas`),
    or the directory named by DDST_SCHEMAS, as the worker itself resolves it."""
    path = Path(os.environ.get("DDST_SCHEMAS") or PYTHON_DIR.parent / "schemas")
    assert (path / "request.schema.json").exists(), f"{path}/request.schema.json missing: run `npm run schemas`"
    return path


def worker_env() -> dict:
    env = dict(os.environ)
    env["DDST_THREADS"] = "1"
    env["PYTHONPATH"] = str(PYTHON_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env
