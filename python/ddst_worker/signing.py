"""HMAC-SHA256 over message frames (the Jupyter scheme, plus length prefixes).

Each frame is fed as an 8-byte little-endian length followed by its bytes, so moving bytes from one
frame to the next changes the MAC. The HMAC key is the key file's hex text as ASCII bytes (as Jupyter
uses its key string), not the decoded 32 bytes.
"""

import hashlib
import hmac


def sign(key: bytes, frames: list[bytes]) -> str:
    """Lowercase hex digest over `frames` (everything after the signature frame)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for frame in frames:
        mac.update(len(frame).to_bytes(8, "little"))
        mac.update(frame)
    return mac.hexdigest()


def verify(key: bytes, frames: list[bytes], signature: bytes) -> bool:
    """Constant-time check of a received signature frame."""
    expected = sign(key, frames).encode("ascii")
    return hmac.compare_digest(expected, bytes(signature))
