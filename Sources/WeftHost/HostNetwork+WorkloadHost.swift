// HostNetwork as the control API's workload endpoints see it (WorkloadHost, WeftControl).
import Glibc
import WeftControl

extension HostNetwork: WorkloadHost {
    public var defaultWorkloadIfname: String { WeftInterfaces.defaultWorkloadIfname }
    public var bridgeName: String { WeftInterfaces.bridge }
    public func canonicalCIDR(_ text: String) throws -> String { try Self.canonicalCIDR(text) }

    public func sameNamespace(_ a: String, _ b: String) -> Bool {
        func identity(_ holder: String) -> (dev_t, ino_t)? {
            guard let (namespace, pid) = AddressHolder.target(of: holder), let target = try? Target(namespace: namespace, pid: pid),
                  let fd = try? target.open() else { return nil }
            defer { Glibc.close(fd) }
            var st = stat()
            return fstat(fd, &st) == 0 ? (st.st_dev, st.st_ino) : nil
        }
        guard let x = identity(a), let y = identity(b) else { return false }
        return x == y
    }
}
