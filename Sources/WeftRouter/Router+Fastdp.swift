// What the router knows of the kernel fast datapath (DESIGN §4). The datapath itself is not
// wired in yet: every connection uses sleeve, and status says why, once and plainly.
import WeftNetlink

extension Router {
    /// Probes the openvswitch generic netlink families once at start.
    static func probeFastdp(enabled: Bool) -> FastdpStatus {
        guard enabled else { return FastdpStatus(available: false, reason: "disabled by --no-fastdp", flows: 0) }
        do {
            _ = try ODPClient.open()
            return FastdpStatus(available: false, reason: "this build does not drive the fast datapath yet; sleeve carries every connection", flows: 0)
        } catch let error as ODPError {
            return FastdpStatus(available: false, reason: error.description, flows: 0)
        } catch {
            return FastdpStatus(available: false, reason: "cannot talk to the openvswitch module: \(error)", flows: 0)
        }
    }
}
