"""Starting and stopping the worker process: usage errors, signals left to the parent, and no orphans."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from client import Client
from conftest import worker_env
from test_server import BUILD


def start(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "ddst_worker", *args], stderr=subprocess.PIPE,
                            env=worker_env(), **kw)


def key_dir():
    tmp = tempfile.mkdtemp(prefix="ddst-test-")
    key = os.urandom(32).hex()
    with open(os.path.join(tmp, "key"), "w") as f:
        f.write(key)
    return tmp, key


def gone(pid: int) -> bool:
    """True once the process is dead (a zombie counts: nobody may reap an orphan here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("case", ["missing key", "empty key", "missing schema"])
def test_bad_start_exits_2_with_a_message(case, schemas):
    tmp, _ = key_dir()
    key_file, schema_dir = os.path.join(tmp, "key"), str(schemas)
    if case == "missing key":
        key_file = os.path.join(tmp, "nope")
    elif case == "empty key":
        open(key_file, "w").close()
    else:
        schema_dir = tmp
    proc = start(["--endpoint", f"ipc://{tmp}/w.sock", "--key-file", key_file, "--schemas", schema_dir])
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.decode().startswith("ddst-worker: ") and ("key" in err.decode() or "schema" in err.decode())


def test_signals_are_left_to_the_parent_and_the_private_dir_goes_at_exit(schemas):
    """SIGTERM, SIGHUP and SIGINT reach the worker with its whole process group (timeout, scancel, a closed
    terminal): it keeps training and leaves the stopping to its parent, then exits 0 on shutdown and removes
    the directory it was given with --private-dir."""
    tmp, key = key_dir()
    endpoint = f"ipc://{tmp}/w.sock"
    proc = start(["--endpoint", endpoint, "--key-file", f"{tmp}/key", "--schemas", str(schemas), "--private-dir", tmp])
    assert proc.stderr.readline().strip() == b"ddst-worker ready"
    c = Client(endpoint, key.encode())
    try:
        c.ok("build", BUILD)
        rid = c.send("train", {"start": 1, "iterations": 300, "probeEvery": 10})
        assert c.recv()[0]["kind"] == "progress"  # it is inside the long op now
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            proc.send_signal(sig)
        header, _, _, _ = c.reply(rid)
        assert header["kind"] == "ok" and header["result"]["end"] == 300
        assert c.ok("shutdown")[0] == {}
        assert proc.wait(10) == 0
        assert not os.path.exists(tmp)
    finally:
        c.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stderr.close()


def test_worker_exits_when_its_parent_dies(schemas):
    tmp, _ = key_dir()
    cmd = [sys.executable, "-m", "ddst_worker", "--endpoint", f"ipc://{tmp}/w.sock", "--key-file", f"{tmp}/key",
           "--schemas", str(schemas)]
    # The middle process starts the worker, reports its pid once it is ready, and exits without waiting.
    middle = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         f"p = subprocess.Popen({cmd!r}, stderr=subprocess.PIPE)\n"
         "p.stderr.readline()\n"
         "print(p.pid, flush=True)\n"],
        capture_output=True, env=worker_env(), timeout=60)
    pid = int(middle.stdout)
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not gone(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("worker outlived its parent")
