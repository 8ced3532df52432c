#!/usr/bin/env python3
"""Independent test vectors for lockbox-keys (validator address and libp2p node ID).

Computed with libraries unrelated to the Rust crates under test:
  coincurve (bindings to bitcoin-core's C libsecp256k1) for public keys,
  pycryptodome for Keccak-256, base58 for base58btc; EIP-55 is written out here.

Reproduce (output is deterministic):
  python3 -m venv /tmp/kvenv
  /tmp/kvenv/bin/pip install coincurve pycryptodome base58
  /tmp/kvenv/bin/python gen_vectors.py > vectors.json
"""
import hashlib
import json

import base58
import coincurve
from Crypto.Hash import keccak

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def keccak256(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def eip55(addr20: bytes) -> str:
    low = addr20.hex()
    digest = keccak256(low.encode("ascii")).hex()
    out = "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(low))
    return "0x" + out


def address(scalar: bytes) -> str:
    pub = coincurve.PrivateKey(scalar).public_key.format(compressed=False)
    assert pub[0] == 0x04 and len(pub) == 65
    return eip55(keccak256(pub[1:])[12:])


def node_id(scalar: bytes) -> str:
    compressed = coincurve.PrivateKey(scalar).public_key.format(compressed=True)
    # libp2p PublicKey protobuf: field 1 (Type) = 2 (Secp256k1), field 2 (Data) = 33 bytes.
    proto = bytes([0x08, 0x02, 0x12, 0x21]) + compressed
    # Keys of at most 42 bytes use the identity multihash: code 0x00, length, digest.
    multihash = bytes([0x00, len(proto)]) + proto
    return base58.b58encode(multihash).decode("ascii")


def scalars():
    yield "one", (1).to_bytes(32, "big")
    yield "two", (2).to_bytes(32, "big")
    yield "n-minus-one", (N - 1).to_bytes(32, "big")
    # The private key used in web3.js / eth-account documentation.
    yield "web3-docs", bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    # Scalars with a leading zero byte (encodings must keep it).
    yield "leading-zero", bytes.fromhex("00" + "7f" * 31)
    for i in range(4):
        s = hashlib.sha256(b"lockbox-keys vector %d" % i).digest()
        assert 0 < int.from_bytes(s, "big") < N
        yield "sha256-%d" % i, s


def main():
    out = []
    for label, s in scalars():
        out.append(
            {
                "label": label,
                "private_key_hex": s.hex(),
                "address": address(s),
                "network_key_hex": "08021220" + s.hex(),
                "node_id": node_id(s),
            }
        )
    print(json.dumps({"generator": "gen_vectors.py (coincurve, pycryptodome, base58)", "vectors": out}, indent=2))


if __name__ == "__main__":
    main()
