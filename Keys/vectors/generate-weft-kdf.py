#!/usr/bin/env python3
"""Generate Keys/vectors/weft-kdf.json: known answers for Weft's own key derivations.

This script is deliberately independent of the Swift implementation (WeftCrypto): it uses only
Python's hashlib/hmac and argon2-cffi, written from docs/protocol.md, so that the Swift code is
checked against a second implementation rather than against itself.

  weft_psk_argon2id_v1  (docs/protocol.md section 2)
      psk    = Argon2id(password UTF-8, salt "weft-psk-salt-v1", t=3, m=32 MiB, p=1, 32 bytes)
      psk_id = BLAKE2b-256("weft psk id v1" || psk)[0:8]
  weft_link_keys_v1     (docs/protocol.md section 3.5)
      key(label) = first 32 bytes of output 1 of the Noise HKDF(ck, label, 2)
      over HMAC-BLAKE2b (HASHLEN 64, BLOCKLEN 128)

Usage:  pip install argon2-cffi && python3 Keys/vectors/generate-weft-kdf.py > Keys/vectors/weft-kdf.json
None of these passwords or keys is a real secret.
"""
import hashlib
import hmac
import json
import sys

from argon2.low_level import Type, hash_secret_raw


def blake2b(data, n=64):
    return hashlib.blake2b(data, digest_size=n).digest()


def hmac_blake2b(key, data):
    return hmac.new(key, data, hashlib.blake2b).digest()  # blake2b: block 128, digest 64


def noise_hkdf(ck, ikm, outputs):
    temp = hmac_blake2b(ck, ikm)
    out, prev = [], b""
    for i in range(1, outputs + 1):
        prev = hmac_blake2b(temp, prev + bytes([i]))
        out.append(prev)
    return out


def psk_entry(password):
    psk = hash_secret_raw(secret=password.encode("utf-8"), salt=b"weft-psk-salt-v1",
                          time_cost=3, memory_cost=32768, parallelism=1, hash_len=32,
                          type=Type.ID)
    psk_id = blake2b(b"weft psk id v1" + psk, 32)[:8]
    return {"protocol_name": "weft_psk_argon2id_v1", "password": password,
            "psk": psk.hex(), "psk_id": psk_id.hex()}


LABELS = [("tcp_i2r", b"weft tcp initiator->responder"),
          ("tcp_r2i", b"weft tcp responder->initiator"),
          ("udp_i2r", b"weft udp initiator->responder"),
          ("udp_r2i", b"weft udp responder->initiator")]


def link_entry(ck):
    assert len(ck) == 64
    entry = {"protocol_name": "weft_link_keys_v1", "chaining_key": ck.hex()}
    for field, label in LABELS:
        entry[field] = noise_hkdf(ck, label, 2)[0][:32].hex()
    return entry


def main():
    vectors = [
        psk_entry("correct horse battery staple"),
        psk_entry("weft-test-password-1"),
        psk_entry("pässwörd mit Ümlauten ✓ 12"),
        link_entry(bytes(range(64))),
        link_entry(blake2b(b"weft test chaining key 2")),
        link_entry(b"\xff" * 64),
    ]
    json.dump({"vectors": vectors}, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
