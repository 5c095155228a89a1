// The router's start-up step on its host: applies `--mtu` to the one underlay/MTU rule
// (HostNetwork.defaultOverlayMTU, WeftHost), then creates bridge and TAP; failures become
// ConfigErrors, which `weft launch` reports with exit status 1.
import Foundation
import Logging
import WeftWire
import WeftHost
import WeftNetlink

extension HostNetwork {
    /// The router's start-up step: the overlay MTU (`--mtu`, else underlay − sleeve overhead),
    /// then bridge and TAP. Failures are ConfigErrors that say what to do.
    static func start(config: RouterConfig, logger: Logger) throws -> HostNetwork {
        do {
            let (overlay, underlay, family) = try HostNetwork.defaultOverlayMTU()
            let mtu = config.mtu ?? overlay
            guard mtu >= 576 else {
                throw ConfigError("the underlay MTU is \(underlay), which leaves only \(overlay) bytes for the overlay; pass --mtu (at least 576)")
            }
            logger.info("overlay MTU", metadata: [
                "mtu": "\(mtu)", "underlayMTU": "\(underlay)", "overhead": "\(family.sleeveOverhead)", "underlayFamily": "\(family.rawValue)",
                "source": "\(config.mtu == nil ? "underlay" : "--mtu")",
            ])
            if mtu > overlay {
                logger.warning("--mtu is larger than the underlay allows for sleeve; large frames will not fit", metadata: [
                    "mtu": "\(mtu)", "largest": "\(overlay)",
                ])
            }
            return try HostNetwork(peerName: config.name, overlayMTU: mtu, underlayMTU: underlay, logger: logger)
        } catch let error as ConfigError {
            throw error
        } catch {
            if let netlink = error as? NetlinkError, netlink.errno == EPERM || netlink.errno == EACCES {
                throw ConfigError("cannot create the weft bridge: \(error); weft launch needs CAP_NET_ADMIN (run it as root)")
            }
            throw ConfigError("cannot create the weft bridge: \(error); is another router running in this network namespace?")
        }
    }
}
