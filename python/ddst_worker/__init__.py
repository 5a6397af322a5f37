"""ddst worker: the PyTorch side of ddst. TypeScript decides, this package computes.

Run as `python -m ddst_worker --endpoint ... --key-file ...`; the wire contract is docs/protocol.md.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = 5
