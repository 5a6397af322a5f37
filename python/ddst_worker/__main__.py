"""Entry point: `python -m ddst_worker --endpoint ENDPOINT --key-file PATH [...]`."""

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path


def fail(message: str) -> None:
    print(f"ddst-worker: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ddst_worker", description="ddst PyTorch worker (ZeroMQ ROUTER)")
    p.add_argument("--endpoint", required=True, help="ZeroMQ endpoint to bind, e.g. ipc:///tmp/ddst-x/worker.sock")
    p.add_argument("--key-file", required=True, help="file holding the hex HMAC key (mode 0600)")
    p.add_argument("--max-message-bytes", type=int, default=1 << 24,
                   help="requests are small JSON: a larger frame disconnects its sender, a larger message gets too_large")
    p.add_argument("--private-dir", help="directory (the socket's and the key's) removed when the worker exits: "
                   "the orchestrator removes it too, this covers an orchestrator killed by SIGKILL")
    p.add_argument("--schemas", default=os.environ.get("DDST_SCHEMAS") or str(Path(__file__).resolve().parents[2] / "schemas"),
                   help="directory holding request.schema.json (default: $DDST_SCHEMAS, else <repo>/schemas)")
    return p.parse_args(argv)


def read_key(path: str) -> bytes:
    try:
        text = Path(path).read_text().strip()
    except OSError as e:
        fail(f"cannot read key file {path}: {e.strerror}")
    try:
        bytes.fromhex(text)
    except ValueError:
        text = ""
    if not text:
        fail(f"key file {path} must hold a non-empty hex key")
    return text.encode("ascii")  # the hex text itself is the HMAC key (see signing.py)


def main(argv=None) -> int:
    # Signals are the orchestrator's to handle. A terminal's Ctrl-C and SIGHUP, and the SIGTERM that `timeout`,
    # Slurm (scancel, preemption) and container stops send, reach the whole process group; the orchestrator
    # decides how to stop (interrupt, checkpoint, shutdown), so the worker must not die under it first. It
    # exits when asked (shutdown) or when its parent is gone.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    parent = os.getppid()  # taken first: the parent may die while torch loads
    args = parse_args(argv)
    try:
        return serve(args, parent)
    finally:
        if args.private_dir:
            shutil.rmtree(args.private_dir, ignore_errors=True)


def serve(args, parent: int) -> int:
    key = read_key(args.key_file)

    # torch loads after the cheap checks: a usage error should not wait for it.
    from .validate import RequestValidator

    schema = Path(args.schemas) / "request.schema.json"
    try:
        validator = RequestValidator(Path(args.schemas))
    except (OSError, ValueError) as e:
        fail(f"cannot load request schema {schema}: {e}")
    except Exception as e:  # e.g. jsonschema.SchemaError
        fail(f"request schema {schema} is not a valid JSON Schema: {e}")

    import torch
    import zmq

    from .server import Server

    threads = os.environ.get("DDST_THREADS")
    if threads:
        if not threads.isdigit() or not 1 <= int(threads) <= 1024:  # the orchestrator's MAX_THREADS
            fail(f"DDST_THREADS must be a number of threads from 1 to 1024, got {threads!r}")
        torch.set_num_threads(int(threads))

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 2000)  # let the last reply (e.g. to shutdown) leave before exit
    # A frame over the cap disconnects its sender before it is held in memory; several frames under it that
    # add up to more are refused as too_large after they arrive.
    sock.setsockopt(zmq.MAXMSGSIZE, args.max_message_bytes)
    try:
        sock.bind(args.endpoint)
    except zmq.ZMQError as e:
        sock.close(0)
        ctx.term()
        fail(f"cannot bind {args.endpoint}: {e}")
    try:
        print("ddst-worker ready", file=sys.stderr, flush=True)
        server = Server(sock, key, args.max_message_bytes, validator, parent=parent)
        server.check_parent()
        server.serve()
    finally:
        sock.close()
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
