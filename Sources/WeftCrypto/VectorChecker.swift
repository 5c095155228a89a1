import Foundation

/// The outcome of checking one vector file.
public struct VectorReport {
    public var passed: Int
    public var failed: Int
    public var skipped: Int
    /// One line per vector: `ok <name>`, `FAIL <name>: reason` or `skip <name>`.
    public var lines: [String]

    public init(passed: Int = 0, failed: Int = 0, skipped: Int = 0, lines: [String] = []) {
        self.passed = passed
        self.failed = failed
        self.skipped = skipped
        self.lines = lines
    }
}

/// Checks test-vector files of the shape `{"vectors": [...]}`:
///
/// - cacophony Noise vectors whose `protocol_name` is a `NoiseProtocol` name (NN, XX, with psk
///   modifiers): both handshake states are run with the vector's prologues, PSKs, static keys and
///   ephemerals; each side's learned remote static key is compared with the other's; every handshake
///   message, then every transport message (through `split()`, alternating initiator→responder and
///   responder→initiator), is compared with the expected ciphertext and decrypted back, and
///   `handshake_hash` is compared when present. A vector with `"fail": true` must fail.
/// - `weft_psk_argon2id_v1` (password, psk, psk_id), `weft_link_keys_v1` (chaining_key,
///   tcp_i2r, tcp_r2i, udp_i2r, udp_r2i) and `weft_identity_v1` (private_key, public_key,
///   peer_name, fingerprint) entries, described in Keys/README.md.
///
/// Vectors with any other `protocol_name` are skipped.
public enum VectorChecker {
    struct Failure: Error { let reason: String }

    public static func check(fileContents: [UInt8], fileName: String) -> VectorReport {
        var report = VectorReport()
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(fileContents), options: [])
        } catch {
            report.failed += 1
            report.lines.append("FAIL \(fileName): not valid JSON (\(error.localizedDescription))")
            return report
        }
        guard let object = root as? [String: Any], let vectors = object["vectors"] as? [Any] else {
            report.failed += 1
            report.lines.append("FAIL \(fileName): expected a JSON object with a \"vectors\" array")
            return report
        }
        for (index, element) in vectors.enumerated() {
            let entry = element as? [String: Any] ?? [:]
            let protocolName = entry["protocol_name"] as? String ?? "?"
            var name = "\(fileName)#\(index) \(protocolName)"
            if let label = entry["name"] as? String { name += " (\(label))" }
            do {
                guard let run = runner(for: protocolName) else {
                    report.skipped += 1
                    report.lines.append("skip \(name)")
                    continue
                }
                try run(entry)
                report.passed += 1
                report.lines.append("ok \(name)")
            } catch let failure as Failure {
                report.failed += 1
                report.lines.append("FAIL \(name): \(failure.reason)")
            } catch {
                report.failed += 1
                report.lines.append("FAIL \(name): \(error)")
            }
        }
        return report
    }

    private static func runner(for protocolName: String) -> (([String: Any]) throws -> Void)? {
        switch protocolName {
        case "weft_psk_argon2id_v1": return checkPSK
        case "weft_link_keys_v1": return checkLinkKeys
        case "weft_identity_v1": return checkIdentity
        default:
            guard let proto = NoiseProtocol(name: protocolName) else { return nil }
            if proto.cipher == .aesGCM && !DataCipher.aesGCMAvailable { return nil }
            return { try checkNoise(proto, $0) }
        }
    }

    // MARK: field access

    private static func hex(_ entry: [String: Any], _ key: String) throws -> [UInt8] {
        guard let value = entry[key] else { throw Failure(reason: "missing field \(key)") }
        guard let text = value as? String, let bytes = Hex.decode(text) else {
            throw Failure(reason: "field \(key) is not a hex string")
        }
        return bytes
    }

    private static func optionalHex(_ entry: [String: Any], _ key: String) throws -> [UInt8]? {
        entry[key] == nil ? nil : try hex(entry, key)
    }

    private static func expectEqual(_ actual: [UInt8], _ expected: [UInt8], _ what: String) throws {
        guard actual == expected else {
            throw Failure(reason: "\(what): got \(Hex.encode(actual)), expected \(Hex.encode(expected))")
        }
    }

    // MARK: Weft KDF entries

    private static func checkPSK(_ entry: [String: Any]) throws {
        guard let password = entry["password"] as? String else { throw Failure(reason: "missing field password") }
        let expectedKey = try hex(entry, "psk")
        let expectedID = try hex(entry, "psk_id")
        let derived = try PreSharedKey.derive(password: password)
        try expectEqual(derived.key, expectedKey, "psk")
        try expectEqual(derived.id.bytes, expectedID, "psk_id")
        guard expectedKey.count == 32 else { throw Failure(reason: "psk is not 32 bytes") }
        try expectEqual(PreSharedKey(key: expectedKey).id.bytes, expectedID, "psk_id from psk")
    }

    private static func checkLinkKeys(_ entry: [String: Any]) throws {
        let ck = try hex(entry, "chaining_key")
        guard ck.count == 64 else { throw Failure(reason: "chaining_key is not 64 bytes") }
        let keys = LinkKeys.derive(chainingKey: ck)
        try expectEqual(keys.tcpInitiatorToResponder, try hex(entry, "tcp_i2r"), "tcp_i2r")
        try expectEqual(keys.tcpResponderToInitiator, try hex(entry, "tcp_r2i"), "tcp_r2i")
        try expectEqual(keys.udpInitiatorToResponder, try hex(entry, "udp_i2r"), "udp_i2r")
        try expectEqual(keys.udpResponderToInitiator, try hex(entry, "udp_r2i"), "udp_r2i")
    }

    private static func checkIdentity(_ entry: [String: Any]) throws {
        let key = try IdentityKey(privateKey: try hex(entry, "private_key"))
        try expectEqual(key.publicKey, try hex(entry, "public_key"), "public_key")
        guard let name = entry["peer_name"] as? String, let fingerprint = entry["fingerprint"] as? String else {
            throw Failure(reason: "missing field peer_name or fingerprint")
        }
        let derived = key.peerNameBytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
        guard derived == name else { throw Failure(reason: "peer_name: got \(derived), expected \(name)") }
        guard key.fingerprint == fingerprint else { throw Failure(reason: "fingerprint: got \(key.fingerprint), expected \(fingerprint)") }
    }

    // MARK: Noise (cacophony format)

    private static func psks(_ entry: [String: Any], _ side: String) throws -> [[UInt8]] {
        if let list = entry["\(side)_psks"] {
            guard let items = list as? [Any] else { throw Failure(reason: "\(side)_psks is not an array") }
            return try items.map {
                guard let text = $0 as? String, let bytes = Hex.decode(text) else {
                    throw Failure(reason: "\(side)_psks holds a non-hex entry")
                }
                return bytes
            }
        }
        if let single = try optionalHex(entry, "\(side)_psk") { return [single] }
        return []
    }

    private static func checkNoise(_ proto: NoiseProtocol, _ entry: [String: Any]) throws {
        let expectFailure = entry["fail"] as? Bool ?? false
        do {
            try runNoise(proto, entry)
        } catch {
            if expectFailure { return }
            throw error
        }
        if expectFailure { throw Failure(reason: "the vector is marked to fail, but it succeeded") }
    }

    private static func runNoise(_ proto: NoiseProtocol, _ entry: [String: Any]) throws {
        let initPrologue = try optionalHex(entry, "init_prologue") ?? []
        let respPrologue = try optionalHex(entry, "resp_prologue") ?? []
        let initEphemeral = try hex(entry, "init_ephemeral")
        let respEphemeral = try hex(entry, "resp_ephemeral")
        // A static key is used where the pattern sends one; for NN a static-key field is ignored.
        let initStatic = proto.sendsStatic(initiator: true) ? try hex(entry, "init_static") : nil
        let respStatic = proto.sendsStatic(initiator: false) ? try hex(entry, "resp_static") : nil
        let initPSKs = try psks(entry, "init")
        let respPSKs = try psks(entry, "resp")
        let needed = proto.pskModifiers.count
        guard initPSKs.count == needed, respPSKs.count == needed else {
            throw Failure(reason: "\(proto.name) needs \(needed) PSK(s) per side, the vector has \(initPSKs.count)/\(respPSKs.count)")
        }
        guard let messages = entry["messages"] as? [[String: Any]] else { throw Failure(reason: "missing messages") }

        var initiator = try NoiseHandshakeState(protocol: proto, initiator: true, prologue: initPrologue, psks: initPSKs,
                                                staticPrivateKey: initStatic, ephemeralPrivateKey: initEphemeral)
        var responder = try NoiseHandshakeState(protocol: proto, initiator: false, prologue: respPrologue, psks: respPSKs,
                                                staticPrivateKey: respStatic, ephemeralPrivateKey: respEphemeral)
        var transport: (i2r: NoiseCipherState, r2i: NoiseCipherState, ri2r: NoiseCipherState, rr2i: NoiseCipherState)?

        for (i, message) in messages.enumerated() {
            let payload = try hex(message, "payload")
            let expected = try hex(message, "ciphertext")
            let fromInitiator = i % 2 == 0
            let what = "message \(i) (\(fromInitiator ? "initiator→responder" : "responder→initiator"))"
            let ciphertext: [UInt8]
            let decrypted: [UInt8]
            if !initiator.isComplete || !responder.isComplete {
                if fromInitiator {
                    ciphertext = try initiator.writeMessage(payload: payload)
                    try expectEqual(ciphertext, expected, "\(what) ciphertext")
                    decrypted = try responder.readMessage(expected)
                } else {
                    ciphertext = try responder.writeMessage(payload: payload)
                    try expectEqual(ciphertext, expected, "\(what) ciphertext")
                    decrypted = try initiator.readMessage(expected)
                }
            } else {
                if transport == nil {
                    let (ic1, ic2) = initiator.split()
                    let (rc1, rc2) = responder.split()
                    transport = (ic1, ic2, rc1, rc2)
                }
                if fromInitiator {
                    ciphertext = transport!.i2r.encrypt(ad: [], plaintext: payload)
                    try expectEqual(ciphertext, expected, "\(what) ciphertext")
                    decrypted = try transport!.ri2r.decrypt(ad: [], ciphertext: expected)
                } else {
                    ciphertext = transport!.rr2i.encrypt(ad: [], plaintext: payload)
                    try expectEqual(ciphertext, expected, "\(what) ciphertext")
                    decrypted = try transport!.r2i.decrypt(ad: [], ciphertext: expected)
                }
            }
            try expectEqual(decrypted, payload, "\(what) decrypted payload")
        }
        guard initiator.isComplete, responder.isComplete else {
            throw Failure(reason: "the vector ends before the handshake is complete")
        }
        try expectEqual(initiator.handshakeHash, responder.handshakeHash, "responder handshake hash vs initiator's")
        if let respStatic {
            try expectEqual(initiator.remoteStaticPublicKey ?? [], X25519.publicKey(privateKey: respStatic), "responder static key as the initiator learned it")
        }
        if let initStatic {
            try expectEqual(responder.remoteStaticPublicKey ?? [], X25519.publicKey(privateKey: initStatic), "initiator static key as the responder learned it")
        }
        if let expectedHash = try optionalHex(entry, "handshake_hash") {
            try expectEqual(initiator.handshakeHash, expectedHash, "handshake_hash")
        }
    }
}
