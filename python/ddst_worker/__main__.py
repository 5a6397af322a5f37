"""Entry point: `python -m ddst_worker --endpoint ENDPOINT --key-file PATH [...]`."""

import argparse
import os
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
    p.add_argument("--max-message-bytes", type=int, default=1 << 30, help="larger requests get too_large")
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
    # SIGTERM unwinds like sys.exit(0): the `finally` around the loop closes the socket.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A terminal's Ctrl-C reaches the whole process group, the orchestrator included, and the orchestrator
    # decides how to stop (interrupt, checkpoint, shutdown): the worker must not die under it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()  # taken first: the parent may die while torch loads
    args = parse_args(argv)
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
        if not threads.isdigit() or int(threads) < 1:
            fail(f"DDST_THREADS must be a positive integer, got {threads!r}")
        torch.set_num_threads(int(threads))

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 2000)  # let the last reply (e.g. to shutdown) leave before exit
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
