import CWeftShims
#if canImport(Glibc)
import Glibc
#endif

/// A TAP device opened through /dev/net/tun (IFF_TAP|IFF_NO_PI, optionally IFF_VNET_HDR).
/// The device exists while `fd` is open (it is not made persistent); it is created in the
/// network namespace of the opening thread (see `NetworkNamespace.perform`).
public struct TapDevice: Sendable {
    public let fd: Int32
    /// The name the kernel gave the device (equal to the requested one unless that was empty).
    public let name: String

    /// Opens (creating if needed) the TAP device `name`. With `vnetHeader`, every read and write
    /// starts with a 10-byte struct virtio_net_hdr. An empty name lets the kernel pick "tapN".
    public static func open(name: String, vnetHeader: Bool) throws -> TapDevice {
        let operation = "open TAP device '\(name)'"
        if !name.isEmpty { try checkName(name, operation) }
        let fd = Glibc.open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError(operation: operation + " (/dev/net/tun)", errno: errno) }
        var chosen = [CChar](repeating: 0, count: 16)
        guard weft_tun_set_iff_tap(fd, name, vnetHeader ? 1 : 0, &chosen) == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            let detail = code == EBUSY ? "'\(name)' is already open (or exists as another kind of device)" : nil
            throw NetlinkError(operation: operation + " (TUNSETIFF)", errno: code, detail: detail)
        }
        return TapDevice(fd: fd, name: chosen.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }

    /// Lets the kernel hand this TAP (opened with `vnetHeader`) TCP super-frames of up to 64 KiB
    /// with partial checksums, and take such frames back: one read or write instead of dozens.
    public func enableTSO() throws {
        guard weft_tun_enable_tso(fd) == 0 else { throw NetlinkError(operation: "enable TSO on TAP device '\(name)'", errno: errno) }
    }

    /// Closes the descriptor; the device disappears with it.
    public func close() {
        _ = Glibc.close(fd)
    }
}
