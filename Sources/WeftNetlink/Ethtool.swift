// The one ethtool ioctl Weft reads (SIOCETHTOOL): whether UDP fragmentation offload is on, for
// `weft doctor`'s offload check.
import Foundation

public enum Ethtool {
    /// ETHTOOL_GUFO through SIOCETHTOOL; nil where the kernel no longer knows UFO (4.14+).
    public static func udpFragmentationOffload(_ name: String) -> Bool? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var value: [UInt32] = [0x21, 0]  // struct ethtool_value { cmd = ETHTOOL_GUFO, data }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: Array(name.utf8.prefix(15)) + [0]) }
        let rc = value.withUnsafeMutableBytes { buffer -> Int32 in
            request.ifr_ifru.ifru_data = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            return ioctl(fd, 0x8946, &request)  // SIOCETHTOOL
        }
        return rc == 0 ? value[1] != 0 : nil
    }
}
