"""The ROUTER loop: authenticate, check, decode, dispatch, reply. A request never kills the worker.

Incoming: [identity, signature, header, *tensors]. Outgoing: [identity, signature, header, *tensors].
Order of checks: frame count and signature, then the header's sequence number (a repeated or older one is a
replay); failures of these are dropped silently and counted by reason. Then size (too_large), header JSON
(bad_header), version (version_mismatch), op (unknown_op), schema (invalid_request), tensor frames
(bad_tensor), and the op itself.
"""

import json
import os
import sys
import time
import traceback

import zmq

from . import PROTOCOL_VERSION
from .errors import WorkerError
from .frames import decode_all, encode_all
from .session import Session
from .signing import sign, verify
from .validate import RequestValidator

POLL_MS = 500            # how often the idle loop wakes to check on its parent
PROGRESS_EVERY_S = 0.25  # rate limit for progress events
LONG_OPS = {"train", "evaluate"}  # ops that stream progress and serve SERVED_WHILE_BUSY while running
SERVED_WHILE_BUSY = ("ping", "interrupt")  # both touch no training state


class ParentGone(SystemExit):
    pass


class Server:
    def __init__(self, sock: zmq.Socket, key: bytes, max_bytes: int, validator: RequestValidator,
                 session: Session | None = None, parent: int | None = None):
        self.sock = sock
        self.key = key
        self.max_bytes = max_bytes
        self.validator = validator
        self.session = session or Session()
        self.parent = parent if parent is not None else os.getppid()  # the pid whose death ends us
        # The orchestrator's own pid where a wrapper script stands between us (DDST_PYTHON without `exec`): that
        # shell outlives a SIGKILLed orchestrator, so our parent alone would keep us running with no one to serve.
        self.orchestrator = _pid_from_env("DDST_ORCHESTRATOR_PID")
        self.last_seq = 0  # the highest sequence number accepted: each signed request carries a higher one

    # ---- sending -------------------------------------------------------------------------------

    def send(self, identity: bytes, header: dict, frames: list[bytes] = ()) -> None:
        """Sign and send; raises TypeError/ValueError (before sending anything) if the header is not
        strict JSON, e.g. a NaN in a result."""
        body = [_to_json({"v": PROTOCOL_VERSION, **header})] + list(frames)
        self.sock.send_multipart([identity, sign(self.key, body).encode()] + body)

    def send_error(self, identity: bytes, rid, err: WorkerError) -> None:
        error = err.to_json()
        try:
            self.send(identity, {"id": rid, "kind": "error", "error": error})
        except (TypeError, ValueError):  # a detail JSON cannot carry: send its repr instead
            error["detail"] = {"repr": repr(err.detail)[:4000]}
            self.send(identity, {"id": rid, "kind": "error", "error": error})

    # ---- receiving -----------------------------------------------------------------------------

    def admit(self, frames: list[bytes]):
        """Authenticate and check one message. Returns (identity, id, op, args, tensors), or None when
        the message was dropped or already answered with an error."""
        if len(frames) < 3 or not verify(self.key, frames[2:], frames[1]):
            return self.drop("unsigned", "a message without a valid signature")
        identity, header_bytes, tensor_frames = frames[0], frames[2], frames[3:]
        # Signed, but maybe captured and sent again: only a sequence number above every earlier one is new.
        # A header without one is left to the schema, which requires it.
        seq = _peek(header_bytes, "seq")
        # 105.0 is the number 105 (the schema takes it as an integer), so it is checked as one.
        if isinstance(seq, float) and seq.is_integer():
            seq = int(seq)
        if isinstance(seq, int) and not isinstance(seq, bool):
            if seq <= self.last_seq:
                return self.drop("replayed", f"a replayed request (seq {seq}, after {self.last_seq})")
        rid = None
        try:
            size = sum(len(f) for f in frames[1:])
            if size > self.max_bytes:
                rid = _peek(header_bytes, "id")
                raise WorkerError("too_large", f"message is {size} bytes; this worker accepts at most "
                                  f"{self.max_bytes} (--max-message-bytes)", {"size": size, "max": self.max_bytes})
            header = _parse_header(header_bytes)
            rid = header.get("id") if isinstance(header.get("id"), str) else None
            if header.get("v") != PROTOCOL_VERSION:
                raise WorkerError("version_mismatch", f"worker speaks protocol v{PROTOCOL_VERSION}, "
                                  f"request says v={header.get('v')!r}",
                                  {"expected": PROTOCOL_VERSION, "got": header.get("v")})
            op = header.get("op")
            if isinstance(op, str) and not self.validator.knows(op):
                raise WorkerError("unknown_op", f"unknown op {op!r}", {"op": op, "ops": sorted(self.validator.ops)})
            self.validator.validate(header)
            # Only a request that passed the schema moves the replay bound: a header refused (a seq far out of range)
            # would otherwise make every later genuine request look replayed.
            self.last_seq = seq
            tensors = decode_all(header.get("tensors", []), tensor_frames)
            return identity, rid, op, header.get("args", {}), tensors
        except WorkerError as err:
            self.send_error(identity, rid, err)
            return None

    def drop(self, reason: str, what: str) -> None:
        """Count a message dropped unanswered; the first of each reason is logged (a flood is only counted)."""
        self.session.dropped[reason] += 1
        if self.session.dropped[reason] == 1:
            print(f"ddst-worker: dropped {what}; further ones are counted (hello, ping: dropped.{reason})",
                  file=sys.stderr, flush=True)
        return None

    def handle(self, frames: list[bytes], busy: bool = False) -> None:
        try:
            self._handle(frames, busy)
        except Exception:  # last line of defence (e.g. a reply that failed to send): log, keep serving
            print("ddst-worker: failed to handle a message:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()

    def _handle(self, frames: list[bytes], busy: bool) -> None:
        request = self.admit(frames)
        if request is None:
            return
        identity, rid, op, args, tensors = request
        if busy:  # called from inside a long op: answer ping and interrupt, refuse the rest
            if op in SERVED_WHILE_BUSY:
                result, _ = self.session.handle(op, args, tensors)
                self.send(identity, {"id": rid, "kind": "ok", "result": result, "tensors": []})
            else:
                self.send_error(identity, rid, WorkerError(
                    "busy", f"a long operation is running (iteration {self.session.iter}); only "
                    f"{' and '.join(SERVED_WHILE_BUSY)} are served", {"iter": self.session.iter, "op": op}))
            return
        progress = self.progress_for(identity, rid, op) if op in LONG_OPS else None
        self.session.busy = op in LONG_OPS
        try:
            result, out = self.session.handle(op, args, tensors, progress)
            descs, data = encode_all(out)
            self.send(identity, {"id": rid, "kind": "ok", "result": result, "tensors": descs}, data)
        except WorkerError as err:
            self.send_error(identity, rid, err)
        except Exception as exc:  # the worker outlives every request
            trace = traceback.format_exc()
            print(f"ddst-worker: {op} failed:\n{trace}", file=sys.stderr, flush=True)
            self.send_error(identity, rid, WorkerError("internal", f"{type(exc).__name__}: {exc}", {"traceback": trace}))
        finally:
            self.session.busy = False

    def progress_for(self, identity: bytes, rid, op: str):
        """Callback for long ops: rate-limited progress events, and the socket served in between."""
        last = time.monotonic()

        def progress(it: int, done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S or done == total:
                last = now
                self.send(identity, {"id": rid, "kind": "progress",
                                     "progress": {"op": op, "iter": it, "done": done, "total": total}})
                self.check_parent()
            while self.sock.poll(0):
                self.handle(self.sock.recv_multipart(), busy=True)

        return progress

    # ---- the loop ------------------------------------------------------------------------------

    def check_parent(self) -> None:
        if os.getppid() != self.parent or (self.orchestrator is not None and not _alive(self.orchestrator)):
            try:
                print("ddst-worker: parent process is gone, exiting", file=sys.stderr, flush=True)
            except OSError:  # stderr was a pipe to the parent that just died
                pass
            raise ParentGone(0)

    def serve(self) -> None:
        while not self.session.exit_requested:
            if self.sock.poll(POLL_MS):
                self.handle(self.sock.recv_multipart())
            self.check_parent()


def _pid_from_env(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 1 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def _plain(value):
    """numpy / torch scalars -> Python numbers for json.dumps."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(header: dict) -> bytes:
    return json.dumps(header, allow_nan=False, default=_plain).encode()


def _parse_header(data: bytes) -> dict:
    try:
        header = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: nested past Python's stack
        raise WorkerError("bad_header", f"header frame is not UTF-8 JSON: {e}", {})
    if not isinstance(header, dict):
        raise WorkerError("bad_header", "header must be a JSON object", {"type": type(header).__name__})
    return header


def _peek(data: bytes, key: str):
    """header[key] when the header is a JSON object, else None (the full checks come later)."""
    try:
        header = json.loads(data.decode("utf-8"))
        value = header.get(key) if isinstance(header, dict) else None
        return value if key != "id" or isinstance(value, str) else None
    except Exception:
        return None
