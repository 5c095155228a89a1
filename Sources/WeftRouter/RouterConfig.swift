// What `weft launch` was asked to do, validated before anything starts.
import Foundation
import NIOCore
import WeftCrypto
import WeftHost
import WeftMesh
import WeftWire

/// A refusal at start-up: the message says what to fix; `weft launch` exits with status 2.
public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct RouterConfig: Sendable {
    public static let defaultPort = WeftPorts.gossip
    public static let defaultSocket = "/run/weft/weft.sock"
    public static let defaultDataDir = "/var/lib/weft"

    public var name: PeerName
    public var nickname: String
    public var port: Int
    public var trustedSubnets: [Subnet]
    /// nil: no password, the gossip link and data are sent in clear (docs/design.md §2).
    public var psk: PreSharedKey?
    public var socketPath: String
    public var dataDir: String
    public var mtu: Int?
    public var fastdpEnabled: Bool
    /// Addresses from the command line: retried forever.
    public var initialPeers: [String]
    /// Where gossip listens: `anyAddress` unless a test says otherwise.
    public var listenAddress: String
    /// Every address of both families (one dual-stack socket, Router.listen).
    public static let anyAddress = "::"
    /// Session keys are renewed this often (docs/design.md §6).
    public var rekeyInterval: TimeAmount = .seconds(120)
    /// Where /metrics is served (HOST:PORT); nil: off.
    public var metricsAddress: String?
    /// `--trusted-subnets` as given: kept so SIGHUP can combine it with the file again.
    public var trustedSubnetsFlag: [Subnet] = []
    /// `--trusted-subnets-file`: re-read on SIGHUP (Reload.swift).
    public var trustedSubnetsFile: String?
    /// `--ipalloc-range`: where `weft attach` without an address allocates; nil: off.
    public var ipallocRange: AddressRange? = RouterConfig.defaultIPAllocRange
    public static let defaultIPAllocRange = try? AddressRange("10.32.0.0/12")
    /// `--ipalloc-init consensus=N`: how many routers divide the range at first (a majority of
    /// them must agree, docs/protocol.md §7.2). Default: this router and the peers it names.
    public var ipallocConsensus: Int?
    /// The long-term key pair from `<data-dir>/identity.key` (docs/protocol.md §3.10): the static
    /// key of every link's handshake, and where `name` comes from.
    public var identity: IdentityKey

    public init(name: PeerName, nickname: String, port: Int, trustedSubnets: [Subnet], psk: PreSharedKey?, socketPath: String,
                dataDir: String, mtu: Int?, fastdpEnabled: Bool, initialPeers: [String], identity: IdentityKey,
                listenAddress: String = RouterConfig.anyAddress, metricsAddress: String? = nil) {
        self.name = name
        self.identity = identity
        self.nickname = nickname
        self.port = port
        self.trustedSubnets = trustedSubnets
        self.psk = psk
        self.socketPath = socketPath
        self.dataDir = dataDir
        self.mtu = mtu
        self.fastdpEnabled = fastdpEnabled
        self.initialPeers = initialPeers
        self.listenAddress = listenAddress
        self.metricsAddress = metricsAddress
    }

    public func trusts(_ address: IPAddress) -> Bool { trustedSubnets.contains { $0.contains(address) } }
}

/// Reading the password and the persisted identity. Never logs or echoes a secret.
public enum LaunchInputs {
    /// The password from `--password-file` (its first line, PasswordText) or `WEFT_PASSWORD`, and
    /// what looks wrong in it; nil when neither is given. Both given, too short or unreadable: a
    /// ConfigError that says what to fix.
    public static func password(file: String?, environment: [String: String]) throws -> PasswordText? {
        let text: PasswordText
        if let file {
            guard environment["WEFT_PASSWORD"] == nil else {
                throw ConfigError("both WEFT_PASSWORD and --password-file \(file) are given; give one, so that it is clear which password "
                                  + "this router uses (unset WEFT_PASSWORD, or drop --password-file)")
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError("cannot read password file \(file): check that it exists and is readable by this user")
            }
            text = try PasswordText(Array(data), source: "password file \(file)")
        } else if let env = environment["WEFT_PASSWORD"] {
            text = PasswordText(verbatim: env)
        } else {
            return nil
        }
        guard text.password.count >= PreSharedKey.minimumPasswordLength else {
            throw ConfigError("the password is \(text.password.count) characters long; use at least \(PreSharedKey.minimumPasswordLength)")
        }
        return text
    }

    /// The one warning of a router without a password (no keyring after loading).
    public static let unencryptedWarning = "no password (WEFT_PASSWORD or --password-file): traffic and gossip between routers "
        + "are sent unencrypted and unauthenticated, and anyone who reaches this router's port can join the mesh"

    /// The warning for a password file that users other than its owner can read or change, or
    /// nil; `mode` is its st_mode (as `wg` does, the file is used all the same).
    public static func passwordFileWarning(file: String, mode: UInt32) -> String? {
        let permissions = mode & 0o777
        guard permissions & 0o077 != 0 else { return nil }
        return "password file \(file) is readable or writable by group or others (mode \(String(permissions, radix: 8))); "
            + "run `chmod 600 \(file)`"
    }

    /// The st_mode of `file`, or nil when it cannot be stat'ed (reading it reports that).
    public static func fileMode(_ file: String) -> UInt32? {
        var info = stat()
        guard stat(file, &info) == 0 else { return nil }
        return UInt32(info.st_mode)
    }

    /// `--name`, checked: six hex bytes, and a unicast, non-zero MAC address (it is the bridge's
    /// MAC, which the kernel refuses otherwise).
    public static func peerName(flag: String) throws -> PeerName {
        guard let name = PeerName(flag) else {
            throw ConfigError("--name \(flag) is not a peer name: write it like 02:ab:cd:ef:01:23")
        }
        if name.value == 0 {
            throw ConfigError("--name \(flag) is all zeros, which is no MAC address; use a locally administered one like 02:ab:cd:ef:01:23")
        }
        if name.bytes[0] & 0x01 != 0 {
            throw ConfigError("--name \(flag) is a multicast MAC address (the first byte is odd); "
                              + "use a unicast one, like \(PeerName(value: name.value & ~(UInt64(1) << 40)))")
        }
        return name
    }

    /// The peer name, derived from the identity key (docs/protocol.md §1). `--name`, when given
    /// (already checked by `peerName(flag:)`), must be that name: it checks, it cannot choose (a
    /// name is bound to its key).
    public static func peerName(given: PeerName?, identity: IdentityKey, dataDir: String) throws -> PeerName {
        let name = PeerName(bytes: identity.peerNameBytes)
        if let given, given != name {
            throw ConfigError("--name \(given) is not this router's name: names come from the identity key "
                + "(\((dataDir as NSString).appendingPathComponent(identityKeyFile))), and this router's is \(name); drop --name")
        }
        return name
    }

    public static let identityKeyFile = "identity.key"

    /// The router's identity key: the one in `<data-dir>/identity.key`, else a new one created
    /// there (0600, never replacing a file). A file that is not a regular file of this user, that
    /// group or others may read, or that does not parse is refused and left as it is.
    public static func identityKey(dataDir: String) throws -> IdentityKey {
        let path = (dataDir as NSString).appendingPathComponent(identityKeyFile)
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else {
                throw ConfigError("cannot read the identity key \(path): \(String(cString: strerror(errno)))")
            }
            let key = IdentityKey.generate()
            do {
                try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
                try AtomicFile.create(key.fileBytes(), at: path, mode: 0o600)
            } catch {
                throw ConfigError("cannot create the identity key in \(dataDir): \(error); pass --data-dir to a writable directory")
            }
            return key
        }
        if let problem = identityKeyFileProblem(mode: UInt32(info.st_mode), owner: info.st_uid, user: geteuid()) {
            throw ConfigError("identity key \(path) \(problem)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read the identity key \(path): \(String(cString: strerror(errno)))")
        }
        do {
            return try IdentityKey(fileBytes: [UInt8](data))
        } catch {
            throw ConfigError("identity key \(path) is unusable: \(error). It is left as it is: restore it from a backup, "
                + "or move it away to give this router a new identity")
        }
    }

    /// Why an existing identity.key with this st_mode and owner is refused, or nil.
    public static func identityKeyFileProblem(mode: UInt32, owner: uid_t, user: uid_t) -> String? {
        guard mode & UInt32(S_IFMT) == UInt32(S_IFREG) else { return "is not a regular file; move it away" }
        guard owner == user else { return "belongs to uid \(owner), not to this router's uid \(user); run `chown \(user)` on it" }
        let permissions = mode & 0o777
        guard permissions & 0o077 == 0 else {
            return "is readable or writable by group or others (mode \(String(permissions, radix: 8))); run `chmod 600` on it"
        }
        return nil
    }

    /// `--nickname`: at most the 64 bytes the wire carries (docs/protocol.md §1), refused rather
    /// than cut, so peers and logs show what the operator wrote.
    public static func checkNickname(_ nickname: String) throws {
        let bytes = nickname.utf8.count
        guard bytes <= Hello.maxNicknameBytes else {
            throw ConfigError("--nickname is \(bytes) bytes long; use at most \(Hello.maxNicknameBytes) bytes (UTF-8)")
        }
    }

    /// Only the default control socket's directory (/run/weft) is created: a `--socket` in a
    /// directory that does not exist is most likely a typo, refused before anything starts.
    public static func checkSocketDirectory(_ socketPath: String) throws {
        guard socketPath != RouterConfig.defaultSocket else { return }
        let directory = (socketPath as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard directory.isEmpty || (FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue) else {
            throw ConfigError("--socket \(socketPath): the directory \(directory) does not exist; create it first "
                              + "(only the default \(RouterConfig.defaultSocket)'s directory is created)")
        }
    }

    /// Creates the default control socket's directory when it is missing (a fresh /run).
    public static func makeSocketDirectory(_ socketPath: String) throws {
        guard socketPath == RouterConfig.defaultSocket else { return }
        let directory = (socketPath as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ConfigError("cannot create \(directory) for the control socket: \(String(cString: strerror(errno))); pass --socket")
        }
    }

    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "weft" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Write-to-temp, fsync, rename: a reader never sees half a file, and a crash leaves the old one.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let temp = try writeTemporary(bytes, for: path, mode: mode)
        guard rename(temp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw ConfigError("cannot write \(path): \(why)")
        }
    }

    /// As `write`, but never replaces an existing file (hard link instead of rename): a file that
    /// appeared meanwhile stays as it is and this throws.
    public static func create(_ bytes: [UInt8], at path: String, mode: mode_t) throws {
        let temp = try writeTemporary(bytes, for: path, mode: mode)
        defer { unlink(temp) }
        guard link(temp, path) == 0 else { throw ConfigError("cannot create \(path): \(String(cString: strerror(errno)))") }
        // The new name is durable only once its directory is.
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    private static func writeTemporary(_ bytes: [UInt8], for path: String, mode: mode_t) throws -> String {
        let temp = path + ".tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ConfigError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var ok = fchmod(fd, mode) == 0
        var offset = 0
        while ok && offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { ok = false } else { offset += n }
        }
        ok = ok && fsync(fd) == 0
        let why = String(cString: strerror(errno))
        close(fd)
        guard ok else {
            unlink(temp)
            throw ConfigError("cannot write \(temp): \(why)")
        }
        return temp
    }
}
