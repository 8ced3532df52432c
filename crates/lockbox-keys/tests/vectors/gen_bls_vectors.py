#!/usr/bin/env python3
"""Independent test vectors for the Polygon Edge (IBFT) BLS validator key in lockbox-keys.

Polygon Edge stores `validator-bls-key` as the lowercase hex of the 32-byte big-endian
BLS12-381 secret scalar; its public key is the 48-byte compressed G1 point (the
proof-of-possession scheme, public keys in G1, signatures in G2). The public keys here come
from py_ecc (the Ethereum Foundation's pure-Python BLS12-381), unrelated to the Rust crates
under test: `G2ProofOfPossession.SkToPk`.

`genesis_validator` is what Polygon Edge's `genesis --ibft-validator` takes for a BLS validator
(`validators.BLSValidator.String()`: the EIP-55 address, `:`, `0x` and the public key hex).
It pairs each BLS key with the validator address of the same position in vectors.json, whose
addresses gen_vectors.py computed independently.

Reproduce (output is deterministic):
  python3 -m venv /tmp/blsvenv
  /tmp/blsvenv/bin/pip install py_ecc
  /tmp/blsvenv/bin/python gen_bls_vectors.py > bls_vectors.json
"""
import hashlib
import json
import os

from py_ecc.bls import G2ProofOfPossession
from py_ecc.optimized_bls12_381 import curve_order

R = curve_order
assert R == 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


def scalars():
    yield "one", 1
    yield "two", 2
    yield "r-minus-one", R - 1
    # Leading zero bytes: the stored hex must keep them (64 characters always).
    yield "leading-zero-byte", int("00" + "5a" * 31, 16)
    yield "leading-zero-bytes", int("0000" + "01" + "a5" * 29, 16)
    # The example in a third-party Polygon Edge key generator's README
    # (Ezzahhh/polygon-edge-keygen), whose printed public key py_ecc reproduces.
    yield "keygen-readme", 0x67A4C21A6E0E3B24505C672F5930885A829E740752D221DF8D499F921FDD2A63
    for i in range(4):
        yield "sha256-%d" % i, int.from_bytes(hashlib.sha256(b"lockbox-keys bls vector %d" % i).digest(), "big") % R


def invalid():
    # Zero is no key; r and above are not canonical scalars (kryptology and zkcrypto refuse them).
    yield "zero", 0
    yield "r", R
    yield "r-plus-one", R + 1
    yield "all-ff", 2**256 - 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "vectors.json")) as f:
        addresses = [v["address"] for v in json.load(f)["vectors"]]

    out = []
    for i, (label, s) in enumerate(scalars()):
        assert 0 < s < R, label
        pk = G2ProofOfPossession.SkToPk(s)
        assert len(pk) == 48
        address = addresses[i % len(addresses)]
        out.append(
            {
                "label": label,
                "secret_key_hex": s.to_bytes(32, "big").hex(),
                "public_key": "0x" + pk.hex(),
                "address": address,
                "genesis_validator": "%s:0x%s" % (address, pk.hex()),
            }
        )
    bad = [{"label": label, "secret_key_hex": s.to_bytes(32, "big").hex()} for label, s in invalid()]
    print(
        json.dumps(
            {"generator": "gen_bls_vectors.py (py_ecc G2ProofOfPossession.SkToPk)", "vectors": out, "invalid": bad},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
