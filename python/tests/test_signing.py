import hashlib
import hmac

from ddst_worker.signing import sign, verify

KEY = b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def test_signature_is_hmac_sha256_over_length_prefixed_frames():
    frames = [b'{"v":1}', b"", b"\x00\x01\x02"]
    fed = b"".join(len(f).to_bytes(8, "little") + f for f in frames)
    expected = hmac.new(KEY, fed, hashlib.sha256).hexdigest()
    assert sign(KEY, frames) == expected and expected == expected.lower() and len(expected) == 64
    assert verify(KEY, frames, expected.encode())


def test_frame_boundaries_key_and_content_matter():
    sig = sign(KEY, [b"ab", b"c"]).encode()
    assert not verify(KEY, [b"a", b"bc"], sig)      # same bytes, other boundaries
    assert not verify(KEY, [b"ab", b"c", b""], sig)  # an extra empty frame
    assert not verify(KEY[::-1], [b"ab", b"c"], sig)
    assert not verify(KEY, [b"ab", b"d"], sig)
    assert not verify(KEY, [b"ab", b"c"], sig.upper())
    assert not verify(KEY, [b"ab", b"c"], b"")
