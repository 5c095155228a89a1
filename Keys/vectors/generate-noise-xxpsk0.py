#!/usr/bin/env python3
"""Generate Keys/vectors/noise-xxpsk0-weft.json: Noise_XXpsk0_25519_{ChaChaPoly,AESGCM}_BLAKE2b vectors.

No public suite has XXpsk0 alone, the pattern of Weft's protocol version 2 (docs/protocol.md
section 3.10), so these come from an implementation independent of the Swift code: the PyPI
package `noiseprotocol` (pure Python over the `cryptography` package). This script only fixes
the inputs, runs both sides of the handshake and some transport messages with that library, and
writes what it produced in the cacophony format that weft-vectors reads.

Inputs are fixed: static keys, ephemeral keys (set through the library's EPHEMERAL keypair, and
checked below to be the ones on the wire), the PSK, prologues and payloads. The cases:
  - the Weft link: prologue "weft" || 0x02 || PSK id, message 1 empty, hellos in messages 2 and 3;
  - every payload empty, handshake and transport, under the Weft prologue;
  - a payload in every message (message 1 included), no prologue;
  - long transport payloads (up to 4 KiB), other keys, the Weft prologue.
Each with ChaChaPoly and with AESGCM.

Usage:  pip install noiseprotocol==0.3.1
        python3 Keys/vectors/generate-noise-xxpsk0.py > Keys/vectors/noise-xxpsk0-weft.json
None of these keys is a real secret: they are derived from published labels.
"""
import hashlib
import json
import sys
import warnings
from importlib.metadata import version

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

LIBRARY_VERSION = "0.3.1"


def derived(label, length=32):
    """Deterministic bytes: BLAKE2b-512 in counter mode over a label."""
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.blake2b(b"%s %d" % (label, counter)).digest()
        counter += 1
    return out[:length]


def public_key(private_key):
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def psk_id(psk):
    # docs/protocol.md section 2: the first 8 bytes of BLAKE2b-256("weft psk id v1" || PSK).
    return hashlib.blake2b(b"weft psk id v1" + psk, digest_size=32).digest()[:8]


def weft_prologue(psk):
    # docs/protocol.md sections 3.3 and 3.10: "weft", the version byte 2, the initiator's PSK id.
    return b"weft" + bytes([2]) + psk_id(psk)


def connection(name, initiator, prologue, psk, static, ephemeral):
    conn = NoiseConnection.from_name(name.encode("ascii"))
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_prologue(prologue)
    conn.set_psks(psk=psk)
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static)
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    with warnings.catch_warnings():
        # The library warns that a preset ephemeral is for testing only: that is the point here.
        warnings.simplefilter("ignore")
        conn.start_handshake()
    return conn


def run(name, case):
    """Both sides with the library; returns the ciphertexts and the handshake hash."""
    psk = case["psk"]
    i = connection(name, True, case["prologue"], psk, case["init_static"], case["init_ephemeral"])
    r = connection(name, False, case["prologue"], psk, case["resp_static"], case["resp_ephemeral"])
    # Held here: the library drops its handshake state when the handshake is done.
    hs_i, hs_r = i.noise_protocol.handshake_state, r.noise_protocol.handshake_state
    ciphertexts = []
    for n, payload in enumerate(case["payloads"]):
        # Messages alternate initiator -> responder, responder -> initiator, also after the handshake.
        sender, receiver = (i, r) if n % 2 == 0 else (r, i)
        if n < 3:
            ciphertext = bytes(sender.write_message(payload))
            received = bytes(receiver.read_message(ciphertext))
        else:
            ciphertext = sender.encrypt(payload)
            received = receiver.decrypt(ciphertext)
        assert received == payload, "message %d did not decrypt to its payload" % n
        ciphertexts.append(ciphertext)
    assert i.handshake_finished and r.handshake_finished
    assert i.get_handshake_hash() == r.get_handshake_hash()

    # The library used the fixed keys: the ephemerals on the wire, the static keys learned.
    assert ciphertexts[0][:32] == public_key(case["init_ephemeral"])
    assert ciphertexts[1][:32] == public_key(case["resp_ephemeral"])
    assert hs_i.rs.public_bytes == public_key(case["resp_static"])
    assert hs_r.rs.public_bytes == public_key(case["init_static"])
    # Sizes: e (32) and the tag in message 1 (psk0 keys it); e, encrypted s (48), tag in 2; s, tag in 3.
    p = case["payloads"]
    assert [len(c) for c in ciphertexts[:3]] == [48 + len(p[0]), 96 + len(p[1]), 64 + len(p[2])]
    return ciphertexts, i.get_handshake_hash()


def vector(name, case):
    ciphertexts, handshake_hash = run(name, case)
    again, again_hash = run(name, case)
    assert (again, again_hash) == (ciphertexts, handshake_hash), "the library is not deterministic"
    return {
        "name": case["label"],
        "protocol_name": name,
        "init_prologue": case["prologue"].hex(),
        "init_psks": [case["psk"].hex()],
        "init_static": case["init_static"].hex(),
        "init_ephemeral": case["init_ephemeral"].hex(),
        "resp_prologue": case["prologue"].hex(),
        "resp_psks": [case["psk"].hex()],
        "resp_static": case["resp_static"].hex(),
        "resp_ephemeral": case["resp_ephemeral"].hex(),
        "handshake_hash": handshake_hash.hex(),
        "messages": [{"payload": payload.hex(), "ciphertext": ciphertext.hex()}
                     for payload, ciphertext in zip(case["payloads"], ciphertexts)],
    }


def cases():
    psk = derived(b"weft xxpsk0 test psk")
    keys = {
        "init_static": bytes(range(32)),  # the first key of weft-identity.json
        "resp_static": derived(b"weft xxpsk0 responder static"),
        "init_ephemeral": derived(b"weft xxpsk0 initiator ephemeral"),
        "resp_ephemeral": derived(b"weft xxpsk0 responder ephemeral"),
    }
    other_keys = {
        "init_static": derived(b"weft xxpsk0 initiator static 2"),
        "resp_static": bytes([0xFF] * 32),
        "init_ephemeral": derived(b"weft xxpsk0 initiator ephemeral 2"),
        "resp_ephemeral": derived(b"weft xxpsk0 responder ephemeral 2"),
    }
    return [
        dict(keys, label="weft link: empty message 1, hellos in messages 2 and 3",
             psk=psk, prologue=weft_prologue(psk),
             payloads=[b"", derived(b"responder hello", 57), derived(b"initiator hello", 61),
                       b"gossip from the responder", b"gossip from the initiator", b"",
                       derived(b"transport 6", 200)]),
        dict(keys, label="every payload empty",
             psk=psk, prologue=weft_prologue(psk), payloads=[b""] * 6),
        dict(keys, label="a payload in every message, no prologue",
             psk=derived(b"weft xxpsk0 test psk 2"), prologue=b"",
             payloads=[b"message 1 (replayable)", b"message 2", b"message 3", b"transport 3",
                       b"transport 4"]),
        dict(other_keys, label="long transport payloads, other keys",
             psk=derived(b"weft xxpsk0 test psk 3"), prologue=weft_prologue(derived(b"weft xxpsk0 test psk 3")),
             payloads=[b"", derived(b"hello 1", 300), derived(b"hello 2", 1), derived(b"transport 3", 4096),
                       derived(b"transport 4", 1500), derived(b"transport 5", 16)]),
    ]


def main():
    if version("noiseprotocol") != LIBRARY_VERSION:
        print("note: noiseprotocol %s here, the vectors were made with %s"
              % (version("noiseprotocol"), LIBRARY_VERSION), file=sys.stderr)
    vectors = [vector("Noise_XXpsk0_25519_%s_BLAKE2b" % cipher, case)
               for cipher in ("ChaChaPoly", "AESGCM") for case in cases()]
    print(json.dumps({"vectors": vectors}, indent=1))


main()
