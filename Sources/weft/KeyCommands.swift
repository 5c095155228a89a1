// `weft rotate-key`, `weft password …`, `weft rotate-password`, `weft revoke`: key management
// through the running router. Passwords are read from a file or standard input (never argv) and stretched
// here, so only the derived key crosses the control socket.
import ArgumentParser
import Foundation
import WeftControl
import WeftCrypto
import WeftMesh
import WeftRouter

/// Reads a new password from `--file` or standard input (its first line, PasswordText) and
/// derives its PSK; what looks wrong in it is printed as a warning.
func readNewPassword(file: String?) throws -> PreSharedKey {
    let data: Data
    if let file {
        guard let contents = FileManager.default.contents(atPath: file) else {
            throw ValidationFailure("cannot read password file \(file): check that it exists and is readable")
        }
        data = contents
    } else {
        data = FileHandle.standardInput.readDataToEndOfFile()
    }
    let text: PasswordText
    do { text = try PasswordText(Array(data), source: file.map { "password file \($0)" } ?? "standard input") } catch let error as ConfigError {
        throw ValidationFailure(error.description, status: ExitStatus.badInput)
    }
    for warning in text.warnings { FileHandle.standardError.write(Data("weft: warning: \(warning)\n".utf8)) }
    guard text.password.count >= PreSharedKey.minimumPasswordLength else {
        throw ValidationFailure("the new password is \(text.password.count) characters long; use at least \(PreSharedKey.minimumPasswordLength)")
    }
    return try PreSharedKey.derive(password: text.password)
}

func jsonBody<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder().encode(value)) }

struct RotateKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Rekey every connection (or one peer's) now, and print old and new key epochs.")
    @Argument(help: "Peer name or nickname (default: every connection).") var peer: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: SocketOption

    func run() throws {
        let body = try socket.call("POST", "/v1/rotate-key", body: try jsonBody(["peer": peer]), timeoutSeconds: 60)
        if json { return FileHandle.standardOutput.write(Data(body)) }
        let results = try JSONDecoder().decode([RotateKeyResult].self, from: Data(body))
        if results.isEmpty { print("no established connections") }
        for r in results {
            print("\(r.peer) (\(r.nickname)): epoch \(r.oldEpoch) -> \(r.newEpoch)\(r.result == "rotated" ? "" : "  [\(r.result)]")")
        }
        if results.contains(where: { $0.result != "rotated" }) { throw ExitCode(ExitStatus.failed) }
    }
}

struct Password: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the password keyring: add, use, retire, list.",
        subcommands: [Add.self, Use.self, Retire.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a password (from --file or standard input); prints its id.")
        @Option(help: "File whose first line is the new password (default: standard input).") var file: String?
        @OptionGroup var socket: SocketOption

        func run() throws {
            let psk = try readNewPassword(file: file)
            let body = try socket.call("POST", "/v1/password/add", body: try jsonBody(["psk": Hex.encode(psk.key)]))
            print((try? JSONDecoder().decode([String: String].self, from: Data(body)))?["id"] ?? psk.id.description)
        }
    }

    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a password active and move existing connections to it.")
        @Argument(help: "Password id (16 hex digits, from weft password list).") var id: String
        @OptionGroup var socket: SocketOption

        func run() throws {
            let body = try socket.call("POST", "/v1/password/use", body: try jsonBody(["id": id]))
            print((try? JSONDecoder().decode([String: String].self, from: Data(body)))?["result"] ?? "ok")
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop accepting a password.")
        @Argument(help: "Password id.") var id: String
        @OptionGroup var socket: SocketOption

        func run() throws {
            let body = try socket.call("POST", "/v1/password/retire", body: try jsonBody(["id": id]))
            print((try? JSONDecoder().decode([String: String].self, from: Data(body)))?["result"] ?? "ok")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List password ids, states and when they were added (never a secret).")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var socket: SocketOption

        func run() throws {
            try socket.show("/v1/passwords", json: json) { (entries: [PasswordInfo]) in
                StatusText.table(["ID", "STATE", "ADDED", "RETIRES"], entries.map { [$0.id, $0.state.rawValue, $0.addedAt, $0.retireAt ?? ""] })
            }
        }
    }
}

struct RotatePassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-password",
        abstract: "Move the whole mesh to a new password: offer, switch, retire the old one after a grace period.")
    @Option(help: "File whose first line is the new password (default: standard input).") var file: String?
    @Option(help: "How long the old password is still accepted, e.g. 30s, 10m, 1h.") var grace: String = "10m"
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: SocketOption

    func run() throws {
        let seconds: Double
        do { seconds = try DurationText.seconds(grace) } catch { throw ValidationFailure("--grace: \(error)") }
        let psk = try readNewPassword(file: file)
        struct Request: Encodable { var psk: String; var graceSeconds: Double }
        let body = try socket.call("POST", "/v1/rotate-password", body: try jsonBody(Request(psk: Hex.encode(psk.key), graceSeconds: seconds)),
                                   timeoutSeconds: 120)
        if json { return FileHandle.standardOutput.write(Data(body)) }
        let r = try JSONDecoder().decode(RotatePasswordResult.self, from: Data(body))
        print("new password id \(r.id) is active (previous \(r.previousId ?? "none"), retired at \(r.retireAt ?? "-"))")
        print("acknowledged by: \(r.acknowledged.isEmpty ? "none" : r.acknowledged.joined(separator: ", "))")
        if !r.missing.isEmpty { print("NOT acknowledged by: \(r.missing.joined(separator: ", ")) (they can join with the old password until it retires)") }
    }
}

struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evict a host: revoke its identity key in the whole mesh, then move the mesh to a new password.",
        discussion: """
            PEER is a peer name, a fingerprint (or a prefix of at least 8 hex digits) or a nickname, \
            as weft status peers shows them. Every router closes its links to the peer and refuses \
            its key from then on, also after restarts. The new password is generated unless \
            --password-file gives one (give one when more hosts are to join later: a generated one \
            is known to no one). --list shows the revocations this router holds.
            """)
    @Argument(help: "The peer to revoke.") var peer: String?
    @Flag(help: "List the revocations instead.") var list = false
    @Option(name: .customLong("password-file"), help: "File whose first line is the new password (default: one is generated).")
    var passwordFile: String?
    @Option(help: "How long the old password is still accepted, e.g. 30s, 10m, 1h.") var grace: String = "10m"
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: SocketOption

    func validate() throws {
        if list, peer != nil { throw ValidationError("give a PEER to revoke or --list, not both") }
        if !list, peer == nil { throw ValidationError("name the PEER to revoke (weft status peers), or give --list") }
        if list, passwordFile != nil { throw ValidationError("--password-file goes with a PEER to revoke") }
    }

    func run() throws {
        if list {
            return try socket.show("/v1/revocations", json: json) { (records: [RevocationStatus]) in
                records.isEmpty ? "no revocations" : StatusText.table(["NAME", "NICKNAME", "IDENTITY", "REVOKED BY", "AT"], records.map {
                    [$0.name, $0.nickname.isEmpty ? "-" : $0.nickname, $0.identity, $0.revokedBy, $0.at]
                })
            }
        }
        let seconds: Double
        do { seconds = try DurationText.seconds(grace) } catch { throw ValidationFailure("--grace: \(error)", status: ExitStatus.badInput) }
        let psk = try passwordFile.map { try readNewPassword(file: $0) }
        let request = RevokeRequest(peer: peer ?? "", psk: psk.map { Hex.encode($0.key) }, graceSeconds: seconds)
        let body = try socket.call("POST", "/v1/revoke", body: try jsonBody(request), timeoutSeconds: 120)
        if json { return FileHandle.standardOutput.write(Data(body)) }
        let r = try JSONDecoder().decode(RevokeResult.self, from: Data(body))
        let v = r.revoked
        print("revoked \(v.name) (\(v.nickname.isEmpty ? "no nickname" : v.nickname)), identity \(v.identity); "
              + "\(r.closedLinks) link\(r.closedLinks == 1 ? "" : "s") here closed, the others follow as the revocation spreads")
        if let rotation = r.rotation {
            print("new password id \(rotation.id) is active (previous \(rotation.previousId ?? "none"), retired at \(rotation.retireAt ?? "-"))")
            print("acknowledged by: \(rotation.acknowledged.isEmpty ? "none" : rotation.acknowledged.joined(separator: ", "))")
            if !rotation.missing.isEmpty {
                print("NOT acknowledged by: \(rotation.missing.joined(separator: ", ")) (they can join with the old password until it retires)")
            }
        } else {
            // The revocation stands (exit 0); the password is the operator's to move.
            print("the password was not rotated: \(r.rotationSkipped ?? "unknown reason")")
        }
    }
}
