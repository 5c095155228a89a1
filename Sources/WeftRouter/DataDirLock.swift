// One router per data directory: its peer name, keyring and address state belong to one router.
// Two routers on one data dir join under the same peer name and knock each other out; the lock
// makes the second refuse to start instead, naming the first.
import Foundation

/// Another router holds what this launch needs (the data dir or the control socket): exit 1.
public struct RouterAlreadyRunning: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An exclusive flock(2) on `<data-dir>/lock`, held for the life of the process (the kernel
/// releases it when the process ends, however it ends, so a crash leaves no stale lock). The file
/// holds the holder's pid, for the message of the router that is refused; it is never removed
/// (removing a lock file races with the next router's open).
public final class DataDirLock: Sendable {
    public static let fileName = "lock"
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Creates the data dir if it is missing and takes its lock.
    /// ConfigError: the data dir cannot be a directory here; RouterAlreadyRunning: another holds it.
    public static func acquire(dataDir: String) throws -> DataDirLock {
        try makeDirectory(dataDir)
        let path = (dataDir as NSString).appendingPathComponent(fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("cannot open the data dir's lock file \(path): \(String(cString: strerror(errno))); "
                              + "pass --data-dir to a directory this user can write")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = readPid(fd).map { "pid \($0)" } ?? "a process that has not written its pid yet"
            close(fd)
            throw RouterAlreadyRunning("a router is already running on data dir \(dataDir) (\(holder), which holds \(path)); "
                                       + "stop it first, or give this router its own --data-dir (and --socket)")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DataDirLock(path: path, fd: fd)
    }

    /// `mkdir -p` with a plain message when a part of the path is a file or cannot be made.
    static func makeDirectory(_ dataDir: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: dataDir, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ConfigError("--data-dir \(dataDir) is a file, not a directory; pass --data-dir a directory (it is created when missing)")
            }
            return
        }
        var path = dataDir.hasPrefix("/") ? "" : "."
        for part in dataDir.split(separator: "/") {
            path += "/" + part
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
                throw ConfigError("cannot create the data dir \(dataDir): \(path): \(String(cString: strerror(errno))); "
                                  + "pass --data-dir a directory this user can create")
            }
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw ConfigError("cannot create the data dir \(dataDir): \(path) is a file, not a directory; pass another --data-dir")
            }
        }
    }

    private static func readPid(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
