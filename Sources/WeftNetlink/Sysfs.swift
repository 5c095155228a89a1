#if canImport(Glibc)
import Glibc
#endif

/// (st_dev, st_ino) of a namespace file such as /proc/self/ns/net: equal pairs, same namespace.
func namespaceIdentity(_ path: String) -> [UInt64]? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return [UInt64(st.st_dev), UInt64(st.st_ino)]
}

/// Contents of a small text file, without the trailing newline; nil when unreadable.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n >= 0 else { return nil }
    var text = String(decoding: buffer[0..<n], as: UTF8.self)
    while text.last == "\n" { text.removeLast() }
    return text
}

/// addr_assign_type from /sys/class/net/NAME. sysfs shows the devices of the network namespace
/// that mounted it, not of the reading thread, so the entry is used only when its ifindex and MAC
/// match what netlink reported for the link.
func sysfsAddrAssignType(_ link: LinkInfo) -> UInt8? {
    let dir = "/sys/class/net/\(link.name)"
    guard let index = readSmallFile(dir + "/ifindex"), Int32(index) == link.index,
          let address = readSmallFile(dir + "/address"), address == formatMAC(link.mac),
          let type = readSmallFile(dir + "/addr_assign_type") else { return nil }
    return UInt8(type)
}
