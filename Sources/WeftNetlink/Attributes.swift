import CMnl

/// Netlink attributes of one message (or one nest), indexed by type; later duplicates win.
/// The pointers point into the receive buffer and are valid only inside the callback that
/// received the message.
struct AttributeTable {
    private(set) var slots: [UnsafePointer<nlattr>?]

    /// Parses the attributes of `nlh` that follow a fixed header of `offset` bytes.
    init(message nlh: UnsafePointer<nlmsghdr>, offset: Int, maxType: Int) {
        let collector = Collector(maxType: maxType)
        _ = mnl_attr_parse(nlh, UInt32(offset), collectAttribute,
                           Unmanaged.passUnretained(collector).toOpaque())
        slots = collector.slots
    }

    /// Parses the attributes nested inside `attr`.
    init(nested attr: UnsafePointer<nlattr>, maxType: Int) {
        let collector = Collector(maxType: maxType)
        _ = mnl_attr_parse_nested(attr, collectAttribute, Unmanaged.passUnretained(collector).toOpaque())
        slots = collector.slots
    }

    subscript(type: Int) -> UnsafePointer<nlattr>? {
        type >= 0 && type < slots.count ? slots[type] : nil
    }

    func u32(_ type: Int) -> UInt32? {
        guard let a = self[type], mnl_attr_get_payload_len(a) >= 4 else { return nil }
        return mnl_attr_get_u32(a)
    }

    func u16(_ type: Int) -> UInt16? {
        guard let a = self[type], mnl_attr_get_payload_len(a) >= 2 else { return nil }
        return mnl_attr_get_u16(a)
    }

    /// A u64 in host order; libmnl copies it out, so 4-byte-aligned payloads are fine.
    func u64(_ type: Int) -> UInt64? {
        guard let a = self[type], mnl_attr_get_payload_len(a) >= 8 else { return nil }
        return mnl_attr_get_u64(a)
    }

    /// The attributes nested in attribute `type`, or nil when it is absent.
    func nested(_ type: Int, maxType: Int) -> AttributeTable? {
        self[type].map { AttributeTable(nested: $0, maxType: maxType) }
    }

    func bytes(_ type: Int) -> [UInt8]? {
        guard let a = self[type] else { return nil }
        let len = Int(mnl_attr_get_payload_len(a))
        guard let p = mnl_attr_get_payload(a) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: len))
    }

    /// A NUL-terminated (or unterminated) string attribute.
    func string(_ type: Int) -> String? {
        guard var b = bytes(type) else { return nil }
        if let nul = b.firstIndex(of: 0) { b.removeSubrange(nul...) }
        return String(decoding: b, as: UTF8.self)
    }


    /// Every attribute nested in `attr`, in order and with duplicates (action lists repeat
    /// types); pointers valid as for the table.
    static func ordered(nested attr: UnsafePointer<nlattr>) -> [(type: Int, attr: UnsafePointer<nlattr>)] {
        let collector = Collector(maxType: -1)
        _ = mnl_attr_parse_nested(attr, collectAttribute, Unmanaged.passUnretained(collector).toOpaque())
        return collector.all
    }
}

/// The payload of an attribute as bytes.
func attributePayload(_ a: UnsafePointer<nlattr>) -> [UInt8] {
    let len = Int(mnl_attr_get_payload_len(a))
    guard len > 0, let p = mnl_attr_get_payload(a) else { return [] }
    return Array(UnsafeRawBufferPointer(start: p, count: len))
}

/// Context of `collectAttribute`: the table being filled.
private final class Collector {
    var slots: [UnsafePointer<nlattr>?]
    /// All attributes in order; filled only when the table has no slots (`ordered`).
    var all: [(type: Int, attr: UnsafePointer<nlattr>)] = []
    init(maxType: Int) { slots = Array(repeating: nil, count: maxType + 1) }
}

/// mnl_attr_parse callback: stores each attribute by type (non-capturing; context = Collector).
/// Types beyond the table are ignored, so newer kernels' attributes do no harm.
private func collectAttribute(_ attr: UnsafePointer<nlattr>?, _ data: UnsafeMutableRawPointer?) -> Int32 {
    guard let attr, let data else { return MNL_CB_ERROR }
    let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
    let type = Int(mnl_attr_get_type(attr))
    if type < collector.slots.count { collector.slots[type] = attr }
    if collector.slots.isEmpty { collector.all.append((type, attr)) }
    return MNL_CB_OK
}
