import os
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def one_torch_thread():
    """One torch thread for a test's in-process training: tiny nets run several times faster on one thread
    than contending for a busy machine's cores. Workers started as processes get theirs from worker_env."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def train(s, start: int, n: int) -> dict:
    """`n` iterations of an in-process Session from `start`, probing every other one -> its tensors by name."""
    _, tensors = s.handle("train", {"start": start, "iterations": n, "probeEvery": 2}, {})
    return dict(tensors)


def mask_ops(s) -> list:
    """One mask change of each kind on an in-process Session: a DST step with gradient growth on G, a global
    one with hybrid growth on D, a density increase with global gradient growth -> their replies."""
    return [s.op_dstStep({"net": "generator", "dropRate": 0.3, "prune": "magnitude", "growth": "gradient", "alpha": 0.5}),
            s.op_dstStep({"net": "discriminator", "dropRate": 0.2, "prune": "global_magnitude",
                          "growth": "global_hybrid", "alpha": 0.5}),
            s.op_setDensity({"net": "discriminator", "target": 0.4, "growth": "global_gradient"})]


class WorkerProcess:
    """The real worker as a subprocess, reached over ipc:// exactly as the orchestrator reaches it: a private
    0700 directory holding the 0600 key file and the socket, the committed schemas, one torch thread, and a
    signed Client once it says it is ready. The one way the tests start a worker."""

    def __init__(self, schemas: Path, *extra_args: str, ready: bool = True):
        import subprocess
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="ddst-test-")
        os.chmod(self.dir, 0o700)
        self.key = os.urandom(32).hex()
        self.key_file = os.path.join(self.dir, "key")
        with open(os.open(self.key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(self.key + "\n")
        self.endpoint = f"ipc://{self.dir}/worker.sock"
        self.proc = subprocess.Popen([sys.executable, "-m", "ddst_worker", "--endpoint", self.endpoint,
                                      "--key-file", self.key_file, "--schemas", str(schemas), *extra_args],
                                     stderr=subprocess.PIPE, env=worker_env())
        self.client = None
        if ready:
            self.wait_ready()

    def wait_ready(self):
        from client import Client
        assert self.proc.stderr.readline().decode().strip() == "ddst-worker ready"
        self.client = Client(self.endpoint, self.key.encode())
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
