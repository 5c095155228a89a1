// The addresses one router handed out, by holder, and the rules of docs/protocol.md §7.3: who
// gives space to a router that has none, and how much.
import WeftWire

/// One router's allocations: holder (the router's key for a workload, such as its namespace) →
/// offset in the range. Holders are unique; offsets are unique.
public struct AddressAllocations: Equatable, Sendable {
    public let range: AddressRange
    public private(set) var byHolder: [String: UInt64] = [:]
    private var holderAt: [UInt64: String] = [:]

    public init(range: AddressRange) { self.range = range }

    public func holder(at offset: UInt64) -> String? { holderAt[offset] }

    /// Blocks with at least one allocation (they are never given away).
    public var blocksInUse: Set<Int> { Set(holderAt.keys.map(range.block(of:))) }

    /// The holder's address: the one it has, else the lowest free one in `owned` blocks that
    /// no holder elsewhere in the mesh has taken by hand (`takenElsewhere`). Nil when `owned`
    /// has no free address left.
    public mutating func allocate(for holder: String, owned: [Int], takenElsewhere: (UInt64) -> Bool = { _ in false }) -> UInt64? {
        if let existing = byHolder[holder] { return existing }
        for block in owned.sorted() {
            let first = range.firstOffset(ofBlock: block)
            let last = first + (range.addressesPerBlock - 1)
            var offset = first
            while true {
                if !range.isReserved(offset), holderAt[offset] == nil, !takenElsewhere(offset) {
                    record(offset, for: holder)
                    return offset
                }
                if offset == last { break }
                offset += 1
            }
        }
        return nil
    }

    /// Records an address given by hand. Returns the holder that has it already, if another.
    public mutating func take(_ offset: UInt64, for holder: String) -> String? {
        if let current = holderAt[offset] { return current == holder ? nil : current }
        if let old = byHolder[holder] { holderAt[old] = nil }
        record(offset, for: holder)
        return nil
    }

    @discardableResult
    public mutating func release(_ holder: String) -> UInt64? {
        guard let offset = byHolder.removeValue(forKey: holder) else { return nil }
        holderAt[offset] = nil
        return offset
    }

    /// Free addresses in `owned` blocks (saturating: an IPv6 share can hold more than 2^64).
    public func freeCount(owned: [Int]) -> UInt64 {
        let mine = Set(owned)
        let used = UInt64(holderAt.keys.lazy.filter { mine.contains(range.block(of: $0)) }.count)
        let usable = range.usableAddresses(inBlocks: owned)
        return usable == .max ? .max : usable - min(usable, used)
    }

    /// Owned blocks with no allocation: what may be given away.
    public func freeBlocks(owned: [Int]) -> [Int] {
        let inUse = blocksInUse
        return owned.filter { !inUse.contains($0) }
    }

    private mutating func record(_ offset: UInt64, for holder: String) {
        byHolder[holder] = offset
        holderAt[offset] = holder
    }
}

/// The pure decisions of address management (docs/protocol.md §7.3).
public enum IPAMRules {
    /// Which blocks a router gives a peer that asked for space: the upper half of its free
    /// blocks (owned, no allocation), so its own share stays one run; its last free block only
    /// when it still has room in blocks it uses.
    public static func donation(free: [Int], roomInUsedBlocks: Bool) -> [Int] {
        let sorted = free.sorted()
        let give = sorted.count >= 2 ? sorted.count / 2 : (sorted.count == 1 && roomInUsedBlocks ? 1 : 0)
        return Array(sorted.suffix(give))
    }

    /// Which peer to ask for space: the one announcing the most free blocks (ties: the smaller
    /// name); nil when nobody has any.
    public static func donor(_ candidates: [(name: PeerName, freeBlocks: Int)]) -> PeerName? {
        candidates.filter { $0.freeBlocks > 0 }
            .min { $0.freeBlocks != $1.freeBlocks ? $0.freeBlocks > $1.freeBlocks : $0.name < $1.name }?.name
    }
}
