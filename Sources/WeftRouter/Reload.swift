// SIGHUP: re-read the trusted subnets (`--trusted-subnets` plus `--trusted-subnets-file`) and
// `<data-dir>/keyring.json`. Trust is decided in the handshake: a link whose trust was withdrawn
// is closed so that it re-handshakes encrypted at once (never left in clear text); trust added
// applies at the link's next handshake, and status says so (docs/operations.md, "Trust and
// reloads"). A file that cannot be read or parsed is logged and ignored.
import Foundation
import Logging
import WeftCrypto
import WeftMesh

extension RouterConfig {
    /// A trusted-subnets file: CIDR ranges separated by commas or newlines; blank lines and
    /// `#` comments are ignored.
    public static func readTrustedSubnetsFile(_ path: String) throws -> [Subnet] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read --trusted-subnets-file \(path): check that it exists and is readable by this user")
        }
        let text = String(decoding: data, as: UTF8.self)
        var subnets: [Subnet] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for item in content.split(separator: ",") where !item.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) {
                do { subnets.append(try Subnet(String(item).trimmingCharacters(in: .whitespaces))) } catch {
                    throw ConfigError("--trusted-subnets-file \(path): \(error)")
                }
            }
        }
        return subnets
    }

    /// The flag's subnets, then the file's, without repeats.
    public static func combineTrusted(_ flag: [Subnet], _ file: [Subnet]) -> [Subnet] {
        var seen = Set<Subnet>()
        return (flag + file).filter { seen.insert($0).inserted }
    }
}

extension Router {
    /// SIGHUP → reload() on the router's loop. Installed by run(); cancelled when it returns.
    func installReloadSignal() -> DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { [weak self] in
            guard let self else { return }
            self.loop.execute { self.reload() }
        }
        source.resume()
        return source
    }

    /// Re-reads the trusted subnets and the keyring; logs one line per change. On the loop.
    func reload() {
        logger.info("reloading (SIGHUP)")
        let changes = reloadTrustedSubnets() + reloadKeyring()
        logger.info("reload done", metadata: ["changes": "\(changes)"])
    }

    private func reloadTrustedSubnets() -> Int {
        guard let path = config.trustedSubnetsFile else { return 0 }
        let fromFile: [Subnet]
        do { fromFile = try RouterConfig.readTrustedSubnetsFile(path) } catch {
            logger.error("trusted subnets not reloaded; keeping the previous list", metadata: ["error": "\(error)"])
            return 0
        }
        let old = config.trustedSubnets
        let new = RouterConfig.combineTrusted(config.trustedSubnetsFlag, fromFile)
        let removed = old.filter { !new.contains($0) }
        let added = new.filter { !old.contains($0) }
        for subnet in removed {
            logger.info("trusted subnet removed", metadata: ["subnet": "\(subnet.text)", "file": "\(path)"])
        }
        for subnet in added {
            logger.info("trusted subnet added", metadata: ["subnet": "\(subnet.text)", "file": "\(path)"])
        }
        config.trustedSubnets = new
        if !removed.isEmpty { rehandshakeWithdrawnTrust() }
        return removed.count + added.count
    }

    /// `reason` of an established link that this router trusts since a reload but that was
    /// not trusted at its handshake.
    static let trustPendingReason = "trusted here since a reload: stays encrypted until its next handshake (and only if the peer trusts this router too)"

    /// Whether `link` runs encrypted although this router now trusts its peer (trust added by a reload).
    func trustPending(_ link: Link) -> Bool {
        passwordSet && link.isEstablished && !link.localHello.trustsRemote && (link.remoteIP.map(config.trusts) ?? false)
    }

    /// Links this router trusted at their handshake but trusts no longer carry traffic in clear
    /// text: they are closed, with a log line each, and reconnect (about a second later) with a
    /// handshake that makes them encrypted. Without a password nothing is encrypted either way.
    private func rehandshakeWithdrawnTrust() {
        guard passwordSet else { return }
        for link in allLinks where link.localHello.trustsRemote && !(link.remoteIP.map(config.trusts) ?? false) {
            logger.warning("trust withdrawn by reload: re-handshaking the link so that it is encrypted", metadata: [
                "peer": "\(link.remoteName.map { "\($0)" } ?? "?")", "address": "\(link.socketAddress)",
            ])
            link.fail("trust withdrawn by reload; reconnecting encrypted", refuse: nil)
        }
    }

    private func reloadKeyring() -> Int {
        let path = (config.dataDir as NSString).appendingPathComponent(Keyring.fileName)
        guard let keyring else {
            if FileManager.default.fileExists(atPath: path) {
                logger.warning("keyring not loaded: this router was launched without a password; restart it to use \(path)")
            }
            return 0
        }
        let read: [KeyringEntry]
        let unknownFields: [String: JSONValue]
        do {
            guard let file = try Keyring.read(path: path) else {
                logger.error("keyring not reloaded: \(path) is missing; keeping the keyring in memory (it is written back on the next change)")
                return 0
            }
            read = try Keyring.promoteNewestAccepted(file.entries, path: path)
            unknownFields = file.unknown
        } catch {
            logger.error("keyring not reloaded; keeping the previous one", metadata: ["error": "\(error)"])
            return 0
        }
        let old = Dictionary(keyring.entries.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let new = Dictionary(read.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var changes = 0
        for entry in keyring.entries where new[entry.id] == nil {
            logger.info("keyring entry removed", metadata: ["pskId": "\(entry.id)", "was": "\(entry.state.rawValue)"])
            changes += 1
        }
        for entry in read {
            if let before = old[entry.id] {
                guard before.state != entry.state || before.psk != entry.psk || before.retireAt != entry.retireAt else { continue }
                logger.info("keyring entry changed", metadata: [
                    "pskId": "\(entry.id)", "was": "\(before.state.rawValue)", "now": "\(entry.state.rawValue)",
                    "retireAt": "\(entry.retireAt ?? "none")",
                ])
            } else {
                logger.info("keyring entry added", metadata: ["pskId": "\(entry.id)", "state": "\(entry.state.rawValue)"])
            }
            changes += 1
        }
        // Always: fields Weft does not know may have changed, and the next write keeps them as read.
        keyring.replace(with: read, unknownFields: unknownFields)
        guard changes > 0 else { return 0 }
        // The file may have needed a newly promoted active entry: write back what is in use.
        saveKeyring()
        // A password that is no longer accepted means what `weft password retire` means.
        let gone = Set(old.keys.compactMap { PSKID(hex: $0) }.filter { keyring.accepted($0) == nil })
        if !gone.isEmpty { closeLinks(using: gone) }
        return changes
    }
}
