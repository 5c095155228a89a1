// Every data-plane thread starts here: a dedicated thread (never NIO, never the main actor),
// named for the kernel too, so `ps -L`, `top -H` and `perf` tell them apart.
import CWeftShims
import Foundation

enum DataPlaneThread {
    /// Runs `body` on a new thread called `name` (at most 15 characters reach the kernel);
    /// `finished` is entered now and left when `body` returns.
    static func start(_ name: String, finished: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        finished.enter()
        let thread = Thread {
            _ = weft_set_thread_name(name)
            body()
            finished.leave()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }
}
