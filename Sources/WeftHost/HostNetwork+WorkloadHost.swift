// HostNetwork as the control API's workload endpoints see it (WorkloadHost, WeftControl).
import WeftControl

extension HostNetwork: WorkloadHost {
    public var defaultWorkloadIfname: String { WeftInterfaces.defaultWorkloadIfname }
    public var bridgeName: String { WeftInterfaces.bridge }
    public func canonicalCIDR(_ text: String) throws -> String { try Self.canonicalCIDR(text) }
}
