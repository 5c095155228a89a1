#!/usr/bin/env python3
"""Generate Keys/vectors/weft-identity.json: known answers for a router's identity key.

Independent of the Swift implementation (WeftCrypto): Python's hashlib and the `cryptography`
package's X25519, written from Keys/README.md ("identity.key") and docs/protocol.md section 1.

  weft_identity_v1
      public_key  = X25519(private_key, 9)
      peer_name   = BLAKE2b-256("weft peer name v1" || public_key)[0:6],
                    byte 0 = (byte 0 & 0xfc) | 0x02  (locally administered, unicast)
      fingerprint = BLAKE2b, 16-byte output, over "weft identity v1" || public_key, in hex

Usage:  python3 Keys/vectors/generate-weft-identity.py > Keys/vectors/weft-identity.json
None of these keys is a real secret: they are derived from published labels.
"""
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


def entry(private_key):
    public_key = X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()
    name = bytearray(hashlib.blake2b(b"weft peer name v1" + public_key, digest_size=32).digest()[:6])
    name[0] = (name[0] & 0xFC) | 0x02
    fingerprint = hashlib.blake2b(b"weft identity v1" + public_key, digest_size=16).hexdigest()
    return {"protocol_name": "weft_identity_v1", "private_key": private_key.hex(),
            "public_key": public_key.hex(), "peer_name": ":".join("%02x" % b for b in name),
            "fingerprint": fingerprint}


def main():
    keys = [bytes(range(32)), bytes([0xFF] * 32), bytes([0x01] + [0] * 31)]
    keys += [hashlib.blake2b(b"weft identity test key %d" % i, digest_size=32).digest() for i in range(8)]
    print(json.dumps({"vectors": [entry(k) for k in keys]}, indent=1))


main()
