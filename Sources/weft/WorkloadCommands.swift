// Host plumbing from the CLI: attach and detach workloads, expose and hide host addresses on the
// bridge (through the running router), and reset (directly, without a router).
import ArgumentParser
import Foundation
import WeftControl
import WeftHost
import WeftRouter

/// The workload's network namespace: a name (`ip netns add NAME`) or, with --pid, a process's.
/// With --pid the first positional argument is the CIDR.
struct NamespaceArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("Network namespace name (as in `ip netns add NAME`); omit with --pid.", valueName: "netns"))
    var netns: String?
    @Option(help: "Process whose network namespace to use, instead of a namespace name.")
    var pid: Int32?
}

/// Runs a command's work; a failure prints `weft: error: …` and exits with its status. A
/// HostNetworkError here is the local check of the address given (canonicalCIDR): bad input.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationFailure {
        throw fail(error.description, code: error.status)
    } catch let error as HostNetworkError {
        throw fail(error.description, code: ExitStatus.badInput)
    }
}

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect a network namespace to the overlay: a veth into it, with an address.",
        discussion: """
            weft attach NETNS [CIDR] [--ifname NAME]   or   weft attach --pid PID [CIDR] [--ifname NAME]
            Without CIDR the router allocates an address from --ipalloc-range and prints it; \
            attaching the same namespace again gives the same address.
            Idempotent: attaching again keeps the same veth and adds the address once.
            """)

    @OptionGroup var target: NamespaceArguments
    @Argument(help: ArgumentHelp("Address of the workload with its prefix length, e.g. 10.32.0.5/12 (default: allocated).", valueName: "cidr"))
    var cidr: String?
    @Option(help: "Interface name inside the namespace.")
    var ifname: String = WeftInterfaces.defaultWorkloadIfname
    @OptionGroup var socket: SocketOption

    /// (namespace, cidr) after --pid shifted the arguments; a nil cidr is allocated.
    private func resolved() throws -> (namespace: String?, cidr: String?) {
        switch (target.pid, target.netns, cidr) {
        case (nil, let ns?, let cidr): return (ns, cidr)
        case (_?, let cidr, nil): return (nil, cidr)
        case (nil, nil, _): throw ValidationError("give a network namespace: weft attach NETNS [CIDR]")
        default: throw ValidationError("name either a network namespace or --pid, not both")
        }
    }

    func validate() throws { _ = try resolved() }

    func run() throws {
        let (namespace, cidr) = try resolved()
        try reportingErrors {
            if let cidr { _ = try HostNetwork.canonicalCIDR(cidr) }
            print(try socket.post(AttachRequest(namespace: namespace, pid: target.pid, cidr: cidr, ifname: ifname), to: "/v1/attach",
                                  timeoutSeconds: allocationTimeout))
        }
    }
}

/// Longer than the router's wait for the pool or for space (Router.allocationWait).
let allocationTimeout = 30

struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the workloads this router attached: namespace or pid, interface, MAC, addresses.",
        discussion: "Workloads attached since the router started; veths adopted from an earlier run are bridge ports but are not listed.")

    @Flag(help: "Print a JSON array of {namespace, pid, ifname, hostIfname, mac, cidrs}.")
    var json = false
    @OptionGroup var socket: SocketOption

    func run() throws { try socket.show("/v1/workloads", json: json, StatusText.workloads) }
}

struct Detach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Disconnect a network namespace from the overlay (removes Weft's veths in it).")

    @OptionGroup var target: NamespaceArguments
    @OptionGroup var socket: SocketOption

    func validate() throws {
        guard (target.netns == nil) != (target.pid == nil) else {
            throw ValidationError("name either a network namespace or --pid: weft detach NETNS")
        }
    }

    func run() throws {
        try reportingErrors { print(try socket.post(DetachRequest(namespace: target.netns, pid: target.pid), to: "/v1/detach")) }
    }
}

/// Expose and hide: the address checked here (a clear message before any router call), then
/// sent; expose without one has the router allocate it.
private func postCIDR(_ cidr: String?, to path: String, _ socket: SocketOption) throws {
    try reportingErrors {
        if let cidr { _ = try HostNetwork.canonicalCIDR(cidr) }
        print(try socket.post(CIDRRequest(cidr: cidr), to: path, timeoutSeconds: allocationTimeout))
    }
}

struct Expose: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Give this host an address on the weft bridge (default: allocated).")
    @Argument(help: ArgumentHelp("Address with its prefix length, e.g. 10.32.0.1/12 (default: allocated).", valueName: "cidr")) var cidr: String?
    @OptionGroup var socket: SocketOption

    func run() throws { try postCIDR(cidr, to: "/v1/expose", socket) }
}

struct Hide: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove an address of this host from the weft bridge.")
    @Argument(help: ArgumentHelp("Address with its prefix length, as given to expose.", valueName: "cidr")) var cidr: String
    @OptionGroup var socket: SocketOption

    func run() throws { try postCIDR(cidr, to: "/v1/hide", socket) }
}

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove every interface Weft created in this network namespace (bridge, TAP, workload veths).",
        discussion: """
            Works without a router (directly over netlink). Refused while a router runs here (it answers \
            on the control socket, or its TAP exists: the TAP lives only as long as its router): stop it \
            first with `weft stop`, or give --force.
            """)

    @Flag(help: "Remove the interfaces even under a running router (it loses its bridge and TAP).")
    var force = false
    @OptionGroup var socket: SocketOption

    func run() throws {
        if !force, let holder = runningRouter() {
            throw fail("reset: a router is running here (\(holder)); stop it first with `weft stop`, "
                       + "or give --force to remove its interfaces anyway", code: ExitStatus.failed)
        }
        let removed: [String]
        do {
            removed = try HostNetwork.reset()
        } catch {
            throw fail("reset: \(error)", code: ExitStatus.failed)
        }
        print(removed.isEmpty ? "nothing to remove" : removed.map { "removed \($0)" }.joined(separator: "\n"))
    }

    /// What shows a router running in this namespace, in words, or nil: a router answering on the
    /// control socket, or the TAP (not persistent, so it exists only while a router holds it).
    private func runningRouter() -> String? {
        if let answer = try? ControlClient(socketPath: socket.path, timeoutSeconds: 2).request(method: "GET", path: "/v1/status"),
           answer.status == 200 {
            return "it answers on \(socket.path)"
        }
        if HostNetwork.tapExists() { return "it holds \(WeftInterfaces.tap)" }
        return nil
    }
}

struct IPAM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipam",
        abstract: "Show the address range and each router's share of it: blocks, used and free addresses.")
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: SocketOption

    func run() throws { try reportingErrors { try socket.show("/v1/ipam", json: json, StatusText.ipam) } }
}

struct RmPeer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmpeer",
        abstract: "Take the address space of a router that is gone for good (refused while it is connected).",
        discussion: "Run it on one router only, after the mesh has settled; the departed router must not come back with its old data dir.")
    @Argument(help: "Peer name or nickname, as weft ipam shows it.") var peer: String
    @OptionGroup var socket: SocketOption

    func run() throws {
        try reportingErrors { print(try socket.post(PeerRequest(peer: peer), to: "/v1/rmpeer")) }
    }
}
