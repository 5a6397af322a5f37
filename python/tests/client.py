"""A minimal orchestrator stand-in for tests: a signed DEALER that speaks docs/protocol.md."""

import itertools
import json

import zmq

from ddst_worker import PROTOCOL_VERSION
from ddst_worker.frames import decode_all, encode_all
from ddst_worker.signing import sign, verify


class Client:
    def __init__(self, endpoint: str, key: bytes):
        self.key = key
        self.endpoint = endpoint
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.seqs = itertools.count(1)

    def close(self):
        self.sock.close(0)

    def send_frames(self, body: list[bytes], signature: bytes | None = None):
        sig = sign(self.key, body).encode() if signature is None else signature
        self.sock.send_multipart([sig] + body)

    def send(self, op: str, args: dict | None = None, tensors=(), rid: str | None = None) -> str:
        seq = next(self.seqs)
        rid = rid or f"r{seq}"
        descs, data = encode_all(list(tensors))
        header = {"v": PROTOCOL_VERSION, "id": rid, "seq": seq, "op": op, "args": args or {}, "tensors": descs}
        self.send_frames([json.dumps(header).encode()] + data)
        return rid

    def recv(self, timeout_s: float = 20.0):
        """-> (header, {name: array}); checks the reply's signature."""
        if not self.sock.poll(int(timeout_s * 1000)):
            raise TimeoutError("no reply from worker")
        frames = self.sock.recv_multipart()
        assert verify(self.key, frames[1:], frames[0]), "reply signature does not verify"
        header = json.loads(frames[1])
        return header, decode_all(header.get("tensors", []), frames[2:])

    def reply(self, rid: str, timeout_s: float = 60.0):
        """Wait for the final reply to `rid`; returns (header, tensors, progress events, other replies)."""
        progress, others = [], []
        while True:
            header, tensors = self.recv(timeout_s)
            if header["id"] != rid:
                others.append(header)
            elif header["kind"] == "progress":
                progress.append(header["progress"])
            else:
                return header, tensors, progress, others

    def call(self, op: str, args: dict | None = None, **kw):
        header, tensors, _, _ = self.reply(self.send(op, args, **kw))
        return header, tensors

    def ok(self, op: str, args: dict | None = None):
        header, tensors = self.call(op, args)
        assert header["kind"] == "ok", header
        return header["result"], tensors
