// Control-API endpoints for host plumbing: attach and detach workloads, expose and hide host
// addresses on the bridge, list workloads. Called from ControlHandler.handle on the router's loop.
import Foundation
import NIOHTTP1

public struct AttachRequest: Codable, Sendable {
    /// Exactly one of `namespace` (as in `ip netns add NAME`) and `pid`.
    public var namespace: String?
    public var pid: Int32?
    public var cidr: String
    /// Interface name inside the workload (default `ethwe`).
    public var ifname: String?

    public init(namespace: String?, pid: Int32?, cidr: String, ifname: String?) {
        self.namespace = namespace
        self.pid = pid
        self.cidr = cidr
        self.ifname = ifname
    }
}

public struct DetachRequest: Codable, Sendable {
    public var namespace: String?
    public var pid: Int32?

    public init(namespace: String?, pid: Int32?) {
        self.namespace = namespace
        self.pid = pid
    }
}

public struct CIDRRequest: Codable, Sendable {
    public var cidr: String
    public init(cidr: String) { self.cidr = cidr }
}

/// The answer to attach/detach/expose/hide: a sentence for the operator, and the workload for
/// attach.
public struct WorkloadResult: Codable, Sendable {
    public var result: String
    public var workload: Workload?
}

enum WorkloadAPI {
    /// nil when `path` is not one of these endpoints.
    static func handle(router: Router, method: HTTPMethod, path: String, body: [UInt8]) -> (HTTPResponseStatus, [UInt8])? {
        guard ["/v1/attach", "/v1/detach", "/v1/expose", "/v1/hide", "/v1/workloads"].contains(path) else { return nil }
        guard let host = router.hostNetwork else {
            return (.serviceUnavailable, ControlHandler.error("the router has no host network"))
        }
        do {
            switch (method, path) {
            case (.GET, "/v1/workloads"):
                return (.ok, ControlHandler.encode(host.workloads))
            case (.POST, "/v1/attach"):
                let request = try decode(AttachRequest.self, body, #"{"namespace": NAME or "pid": PID, "cidr": CIDR, "ifname": NAME}"#)
                let ifname = request.ifname ?? WeftInterfaces.defaultWorkloadIfname
                let workload = try host.attach(namespace: request.namespace, pid: request.pid, cidr: request.cidr, ifname: ifname)
                let what = request.namespace.map { "network namespace '\($0)'" } ?? "process \(request.pid ?? 0)"
                return (.ok, ControlHandler.encode(WorkloadResult(
                    result: "attached \(what): \(ifname) \(workload.cidrs.joined(separator: " ")), host end \(workload.hostIfname)",
                    workload: workload)))
            case (.POST, "/v1/detach"):
                let request = try decode(DetachRequest.self, body, #"{"namespace": NAME} or {"pid": PID}"#)
                let what = request.namespace.map { "network namespace '\($0)'" } ?? "process \(request.pid ?? 0)"
                let removed = try host.detach(namespace: request.namespace, pid: request.pid)
                return (.ok, ControlHandler.encode(WorkloadResult(
                    result: removed ? "detached \(what)" : "\(what) was not attached", workload: nil)))
            case (.POST, "/v1/expose"):
                let cidr = try HostNetwork.canonicalCIDR(decode(CIDRRequest.self, body, #"{"cidr": CIDR}"#).cidr)
                let added = try host.expose(cidr: cidr)
                return (.ok, ControlHandler.encode(WorkloadResult(
                    result: added ? "exposed \(cidr) on \(WeftInterfaces.bridge)" : "\(cidr) was already exposed", workload: nil)))
            case (.POST, "/v1/hide"):
                let cidr = try HostNetwork.canonicalCIDR(decode(CIDRRequest.self, body, #"{"cidr": CIDR}"#).cidr)
                let removed = try host.hide(cidr: cidr)
                return (.ok, ControlHandler.encode(WorkloadResult(
                    result: removed ? "hid \(cidr)" : "\(cidr) was not exposed", workload: nil)))
            default:
                return (.methodNotAllowed, ControlHandler.error("\(method) is not allowed on \(path)"))
            }
        } catch {
            return (.badRequest, ControlHandler.error("\(error)"))
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], _ shape: String) throws -> T {
        guard let value = try? JSONDecoder().decode(type, from: Data(body)) else {
            throw HostNetworkError("expected \(shape)")
        }
        return value
    }
}
