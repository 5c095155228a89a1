import ArgumentParser
import Foundation
import Logging
import WeftControl
import WeftCrypto
import WeftMesh
import WeftRouter
import WeftWire

struct WeftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: an encrypted overlay network router.",
        version: VersionReport.thisBuild.text,
        subcommands: [Launch.self, Status.self, Connect.self, Forget.self, Stop.self, Attach.self, Detach.self, Ps.self, Expose.self, Hide.self, Reset.self,
                      IPAM.self, RmPeer.self, RotateKey.self, Password.self, RotatePassword.self, Revoke.self, DoctorCommand.self, VersionCommand.self])
}

/// `--socket`, shared by every command that talks to a running router.
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: "Control socket of the router (default: $WEFT_SOCKET or /run/weft/weft.sock).")
    var socket: String?

    var path: String { socket ?? ProcessInfo.processInfo.environment["WEFT_SOCKET"] ?? RouterConfig.defaultSocket }

    /// Performs a request and returns the body; prints the router's error and exits 1 otherwise.
    func call(_ method: String, _ path: String, body: [UInt8] = [], timeoutSeconds: Int = 10) throws -> [UInt8] {
        do {
            let client = ControlClient(socketPath: self.path, timeoutSeconds: timeoutSeconds)
            let (status, response) = try client.request(method: method, path: path, body: body)
            guard (200..<300).contains(status) else {
                let message = (try? JSONDecoder().decode(ControlError.self, from: Data(response)))?.error ?? "HTTP \(status)"
                // 400: the request itself was wrong (bad input); anything else: the operation failed.
                throw ValidationFailure("the router refused: \(message)", status: status == 400 ? ExitStatus.badInput : ExitStatus.failed)
            }
            return response
        } catch let error as ControlClientError {
            throw ValidationFailure(error.description)
        }
    }
}

extension SocketOption {
    /// GETs `path` and prints it: with `json`, the router's document as it came; else `render`
    /// of it decoded.
    func show<T: Decodable>(_ path: String, json: Bool, _ render: (T) -> String) throws {
        let body = try call("GET", path)
        if json { return FileHandle.standardOutput.write(Data(body)) }
        print(render(try JSONDecoder().decode(T.self, from: Data(body))))
    }

    /// POSTs a JSON request and returns the router's `result` text (every POST answers
    /// `{"result": …}`, workload calls with the workload beside it).
    func post<T: Encodable>(_ request: T, to path: String, timeoutSeconds: Int = 10) throws -> String {
        let response = try call("POST", path, body: Array(try JSONEncoder().encode(request)), timeoutSeconds: timeoutSeconds)
        return (try? JSONDecoder().decode(WorkloadResult.self, from: Data(response)))?.result ?? "ok"
    }
}

/// Writes a document of ours as indented JSON (slashes unescaped) and a newline.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
}

/// The exit status of every command (docs/operations.md, "Exit status"). Scripts may rely on it.
enum ExitStatus {
    static let ok: Int32 = 0
    /// The operation was tried and failed: no router answers, the router could not do it, a
    /// doctor check failed.
    static let failed: Int32 = 1
    /// Bad usage or input, found before anything was done: an unknown command or flag, a
    /// malformed value, a request the router refused as malformed.
    static let badInput: Int32 = 2
}

extension WeftCommand {
    /// Parses and runs a command. Our failures print `weft: error: …`; the parser's usage
    /// errors print as swift-argument-parser words them, but exit 2, not its 64 (EX_USAGE).
    static func runMain() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let unknown = CommandSuggestion.unknownSubcommand(arguments, root: WeftCommand.self) {
            FileHandle.standardError.write(Data("weft: error: \(unknown)\n".utf8))
            Foundation.exit(ExitStatus.badInput)
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let failure as ValidationFailure {
            FileHandle.standardError.write(Data("weft: error: \(failure.description)\n".utf8))
            Foundation.exit(failure.status)
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.badInput)
            }
            exit(withError: error)
        }
    }
}

/// An error that prints as `weft: error: …` and exits with `status` (1 unless it is bad input).
struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    let status: Int32
    init(_ description: String, status: Int32 = ExitStatus.failed) {
        self.description = description
        self.status = status
    }
}

func fail(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("weft: error: \(message)\n".utf8))
    return ExitCode(code)
}

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the router in the foreground until SIGTERM or SIGINT.",
        discussion: """
            The password comes from $WEFT_PASSWORD or --password-file, never from a flag value. \
            SIGHUP re-reads --trusted-subnets-file and <data-dir>/keyring.json without dropping connections.
            """)

    @Argument(help: "Peers to connect to, HOST[:PORT]; retried until the router stops.")
    var peers: [String] = []
    @Option(help: "Peer name, like 02:ab:cd:ef:01:23: only checked, the name comes from the identity key in the data dir.")
    var name: String?
    @Option(help: "Human label shown to other peers, at most 64 bytes (default: the host name).")
    var nickname: String?
    // .unconditional: `--mtu -1` is a value to refuse with a reason, not a missing value.
    @Option(parsing: .unconditional, help: "TCP gossip port (and UDP sleeve port).")
    var port: Int = RouterConfig.defaultPort
    @Option(name: .customLong("trusted-subnets"), help: "CIDR[,CIDR…] of peer addresses whose links need no encryption.")
    var trustedSubnets: String?
    @Option(name: .customLong("trusted-subnets-file"),
            help: "File of CIDR ranges (comma- or newline-separated, # comments) added to --trusted-subnets; re-read on SIGHUP.")
    var trustedSubnetsFile: String?
    @Option(name: .customLong("password-file"), help: "File whose first line (without its LF or CR LF) is the network password; not together with $WEFT_PASSWORD.")
    var passwordFile: String?
    @OptionGroup var socket: SocketOption
    @Option(name: .customLong("data-dir"), help: "Where the identity key, the keyring and the address ledger are kept (created if missing; one router per data dir, locked).")
    var dataDir: String = RouterConfig.defaultDataDir
    @Option(parsing: .unconditional, help: "Overlay MTU (default: derived from the underlay interface).")
    var mtu: Int?
    @Flag(name: .customLong("no-fastdp"), help: "Never use the kernel fast datapath.")
    var noFastdp = false
    @Option(name: .customLong("log-level"), help: "debug, info, warning or error.")
    var logLevel: String = "info"
    @Option(name: .customLong("rekey-interval"), parsing: .unconditional, help: "How often session keys are renewed, e.g. 120s or 10m.")
    var rekeyInterval: String = "120s"
    @Option(name: .customLong("metrics-addr"), help: "Serve Prometheus metrics at http://HOST:PORT/metrics; off disables.")
    var metricsAddr: String = "127.0.0.1:6782"
    @Option(name: .customLong("ipalloc-range"), help: "Range `weft attach` without an address allocates from, shared by the mesh; off disables.")
    var ipallocRange: String = "10.32.0.0/12"
    @Option(name: .customLong("ipalloc-init"),
            help: "consensus=N: how many routers first divide the range (a majority must be connected). Default: this router and the peers named here.")
    var ipallocInit: String?

    func run() throws {
        let config: RouterConfig
        let level: Logger.Level
        var passwordWarnings: [String] = []
        var dataDirLock: DataDirLock?
        do {
            guard let parsed = Logger.Level(rawValue: logLevel) else {
                throw ConfigError("--log-level \(logLevel) is not one of debug, info, warning, error")
            }
            level = parsed
            // Once every flag has passed: another router on this data dir or control socket is
            // named before anything else is tried (the metrics port, the bridge would fail first).
            config = try makeConfig(passwordWarnings: &passwordWarnings) { flagName in
                dataDirLock = try DataDirLock.acquire(dataDir: dataDir)
                try ControlServer.refuseIfAnswering(path: socket.path)
                try LaunchInputs.makeSocketDirectory(socket.path)
                let identity = try LaunchInputs.identityKey(dataDir: dataDir)
                return (try LaunchInputs.peerName(given: flagName, identity: identity, dataDir: dataDir), identity)
            }
        } catch let error as ConfigError {
            throw fail(error.description, code: ExitStatus.badInput)
        } catch let error as Subnet.ParseError {
            throw fail("--trusted-subnets: \(error)", code: ExitStatus.badInput)
        } catch let error as RouterAlreadyRunning {
            throw fail(error.description, code: ExitStatus.failed)
        } catch let error as ControlSocketError {
            throw fail(error.description, code: ExitStatus.failed)
        }
        LogfmtHandler.bootstrap(level: level)
        let logger = Logger(label: "weft")
        for warning in passwordWarnings { logger.warning("\(warning)") }
        let keyring: Keyring?
        do {
            keyring = try Keyring.load(dataDir: dataDir, launchPSK: config.psk) { logger.warning("\($0)") }
        } catch let error as ConfigError {
            throw fail(error.description, code: ExitStatus.badInput)
        }
        if keyring == nil { logger.warning("\(LaunchInputs.unencryptedWarning)") }
        if let passwordFile, let mode = LaunchInputs.fileMode(passwordFile),
           let warning = LaunchInputs.passwordFileWarning(file: passwordFile, mode: mode) {
            logger.warning("\(warning)")
        }
        do {
            try withExtendedLifetime(dataDirLock) { try Router(config: config, keyring: keyring, logger: logger).run() }
        } catch let error as ConfigError {
            throw fail(error.description, code: ExitStatus.failed)
        }
    }

    /// Checks every flag (reading files, writing nothing), then calls `claim` with the `--name`
    /// given (nil: none) for the peer name and the identity key it comes from; `claim` may lock
    /// and write the data dir.
    private func makeConfig(passwordWarnings: inout [String], claim: (PeerName?) throws -> (PeerName, IdentityKey)) throws -> RouterConfig {
        guard (1...65535).contains(port) else { throw ConfigError("--port \(port) is not a port number (1–65535)") }
        if let problem = peers.lazy.compactMap(PeerAddress.problem).first { throw ConfigError("peer \(problem)") }
        if let mtu, !(576...65000).contains(mtu) { throw ConfigError("--mtu \(mtu) is out of range: it must be a positive number from 576 to 65000") }
        let flagName = try name.map(LaunchInputs.peerName(flag:))
        if let nickname { try LaunchInputs.checkNickname(nickname) }
        try LaunchInputs.checkSocketDirectory(socket.path)
        let metricsAddress = try RouterConfig.parseMetricsAddress(metricsAddr)
        let flagSubnets = try trustedSubnets.map(Subnet.parseList) ?? []
        let fileSubnets = try trustedSubnetsFile.map(RouterConfig.readTrustedSubnetsFile) ?? []
        let subnets = RouterConfig.combineTrusted(flagSubnets, fileSubnets)
        let password = try LaunchInputs.password(file: passwordFile, environment: ProcessInfo.processInfo.environment)
        passwordWarnings = password?.warnings ?? []
        let psk = try password.map { try PreSharedKey.derive(password: $0.password) }
        let rekeySeconds: Double
        if rekeyInterval.hasPrefix("-") {
            throw ConfigError("--rekey-interval \(rekeyInterval) is negative: it must be a positive duration, e.g. 120s or 10m")
        }
        do { rekeySeconds = try DurationText.seconds(rekeyInterval) } catch { throw ConfigError("--rekey-interval: \(error)") }
        guard rekeySeconds >= 1 else { throw ConfigError("--rekey-interval \(rekeyInterval) is too short; use at least 1s") }
        var ipallocRange: AddressRange?
        if self.ipallocRange != "off" {
            do { ipallocRange = try AddressRange(self.ipallocRange) } catch { throw ConfigError("--ipalloc-range: \(error)") }
        }
        var ipallocConsensus: Int?
        if let ipallocInit {
            guard ipallocInit.hasPrefix("consensus="), let n = Int(ipallocInit.dropFirst("consensus=".count)), (1...1000).contains(n) else {
                throw ConfigError("--ipalloc-init \(ipallocInit) is not consensus=N (N from 1 to 1000: how many routers first divide the range)")
            }
            ipallocConsensus = n
        }
        let (peerName, identity) = try claim(flagName)
        var config = RouterConfig(name: peerName, nickname: nickname ?? LaunchInputs.hostName(), port: port, trustedSubnets: subnets,
                            psk: psk, socketPath: socket.path, dataDir: dataDir, mtu: mtu, fastdpEnabled: !noFastdp,
                            initialPeers: peers, identity: identity, metricsAddress: metricsAddress)
        config.rekeyInterval = .milliseconds(Int64(rekeySeconds * 1000))
        config.trustedSubnetsFlag = flagSubnets
        config.trustedSubnetsFile = trustedSubnetsFile.map { URL(fileURLWithPath: $0).path }
        config.ipallocRange = ipallocRange
        config.ipallocConsensus = ipallocConsensus
        return config
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the router, its peers or its connections.")

    enum What: String, ExpressibleByArgument, CaseIterable { case peers, connections, topology }

    @Argument(help: "peers, connections or topology (default: the router itself).")
    var what: What?
    @Flag(help: "Print JSON.")
    var json = false
    @Flag(help: "With topology: print the mesh as a Graphviz graph (weft status topology --dot | dot -Tsvg > mesh.svg).")
    var dot = false
    @OptionGroup var socket: SocketOption

    func validate() throws {
        if dot, what != .topology { throw ValidationError("--dot goes with topology: weft status topology --dot") }
        if dot, json { throw ValidationError("give --json or --dot, not both") }
    }

    func run() throws {
        switch what {
        case nil: try socket.show("/v1/status", json: json, StatusText.router)
        case .peers: try socket.show("/v1/status/peers", json: json, StatusText.peers)
        case .connections: try socket.show("/v1/status/connections", json: json, StatusText.connections)
        case .topology: try socket.show("/v1/status/topology", json: json, dot ? { (t: TopologyStatus) in t.dot() } : StatusText.topology)
        }
    }
}

struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a peer address to connect to (retried until forgotten).")
    @Argument(help: "HOST[:PORT]") var address: String
    @OptionGroup var socket: SocketOption

    func run() throws {
        if let problem = PeerAddress.problem(address) { throw ValidationFailure(problem, status: ExitStatus.badInput) }
        print(try socket.post(AddressRequest(address: address), to: "/v1/connect"))
    }
}

struct Forget: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop connecting to a peer address.")
    @Argument(help: "HOST[:PORT]") var address: String
    @OptionGroup var socket: SocketOption

    func run() throws {
        if let problem = PeerAddress.problem(address) { throw ValidationFailure(problem, status: ExitStatus.badInput) }
        print(try socket.post(AddressRequest(address: address), to: "/v1/forget"))
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the router gracefully.")
    @OptionGroup var socket: SocketOption

    func run() throws {
        _ = try socket.call("POST", "/v1/stop")
        // Wait until the control socket is gone, so `weft stop && …` sees a stopped router.
        for _ in 0..<100 where FileManager.default.fileExists(atPath: socket.path) { usleep(50_000) }
        print("stopped")
    }
}

/// An unknown subcommand, found before the parser (which would only say "unexpected argument"):
/// the words of `arguments` are followed down the command tree while they name subcommands.
enum CommandSuggestion {
    /// "unknown command 'weft stauts'; did you mean 'weft status'?", or nil when every word
    /// before the first option or argument names a command.
    static func unknownSubcommand(_ arguments: [String], root: ParsableCommand.Type) -> String? {
        var command = root
        var path = [root._commandName]
        for word in arguments {
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty, command.configuration.defaultSubcommand == nil, !word.hasPrefix("-"), word != "help" else { return nil }
            guard let next = subcommands.first(where: { $0._commandName == word }) else {
                let names = subcommands.map { $0._commandName }
                let typed = (path + [word]).joined(separator: " ")
                if let nearest = Suggestion.nearest(word, among: names) {
                    return "unknown command '\(typed)'; did you mean '\((path + [nearest]).joined(separator: " "))'?"
                }
                return "unknown command '\(typed)'; the commands are: \(names.joined(separator: ", ")) (see '\(path.joined(separator: " ")) --help')"
            }
            command = next
            path.append(word)
        }
        return nil
    }
}
