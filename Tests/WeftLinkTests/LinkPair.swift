// Two link state machines joined in memory: what one writes the other receives when the test
// says so, with a clock the test moves. Router n has the identity key `LinkPair.identity(n)`,
// and its hello the name that key gives (docs/protocol.md §1), as a real router's does.
import WeftCrypto
import WeftLink
import WeftWire

/// One end of an in-memory link: the machine and what it asked its owner to do.
final class Endpoint {
    var machine: LinkStateMachine
    /// The PSKs this end accepts, by id.
    var keyring: [PSKID: PreSharedKey]
    /// The owner's admission decision (protocol.md §3.9); admits everyone by default.
    var admission: (Endpoint, Hello) -> Refuse? = { _, _ in nil }
    /// Called for every action but writes and admission.
    var onEvent: (Endpoint, LinkAction) -> Void = { _, _ in }
    /// Everything but writes and admission, in order.
    private(set) var events: [LinkAction] = []
    /// Written and not yet delivered to the other end.
    var outbox: [UInt8] = []

    /// `identity` nil: the key of the router whose name the hello carries.
    init(initiator: Bool, hello: Hello, psk: PreSharedKey?, keyring: [PreSharedKey], identity: IdentityKey? = nil, now: UInt64) {
        machine = LinkStateMachine(initiator: initiator, localHello: hello, localPSK: psk,
                                   identity: identity ?? LinkPair.identity(named: hello.name), now: now)
        self.keyring = Dictionary(keyring.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func perform(_ actions: [LinkAction], now: UInt64) {
        for action in actions {
            switch action {
            case .write(let bytes):
                outbox += bytes
            case .authenticate(let hello):
                let refusal = admission(self, hello)
                perform(machine.admit(refusal, now: now, keyring: { self.keyring[$0] }), now: now)
            default:
                events.append(action)
                onEvent(self, action)
            }
        }
    }

    func receive(_ bytes: [UInt8], now: UInt64) {
        perform(machine.receive(bytes, now: now, keyring: { self.keyring[$0] }), now: now)
        while machine.waitsForOwner { perform(machine.resume(now: now, keyring: { self.keyring[$0] }), now: now) }
    }

    func send(_ type: MessageType, _ payload: [UInt8], now: UInt64) {
        perform(machine.send(type: type.rawValue, payload: payload, now: now), now: now)
    }

    var closed: (reason: String, refusal: RefuseCode?)? {
        for case let .close(reason, refusal) in events { return (reason, refusal) }
        return nil
    }

    var established: Bool { events.contains { if case .established = $0 { true } else { false } } }

    var delivered: [(type: UInt8, payload: [UInt8])] {
        events.compactMap { if case let .deliver(type, payload) = $0 { (type, payload) } else { nil } }
    }

    /// The names of the non-write actions, for order checks.
    var eventNames: [String] {
        events.map { event in
            switch event {
            case .write: "write"
            case .authenticate: "authenticate"
            case .established: "established"
            case .deliver: "deliver"
            case .acceptEpoch(let epoch, _): "accept \(epoch)"
            case .sendEpoch(let epoch, _): "send \(epoch)"
            case .rekeyEnded(let failure): failure == nil ? "rekeyed" : "rekey failed"
            case .close: "close"
            }
        }
    }
}

/// A dialer and an acceptor joined by an in-memory byte stream.
final class LinkPair {
    let dialer: Endpoint
    let acceptor: Endpoint
    var now: UInt64 = 1_000_000_000

    /// `dialerIdentity`/`acceptorIdentity` nil: the key the hello's name comes from.
    init(dialerPSK: PreSharedKey? = LinkPair.psk, acceptorPSK: PreSharedKey? = LinkPair.psk, acceptorKeyring: [PreSharedKey]? = nil,
         dialerHello: Hello = LinkPair.hello(1), acceptorHello: Hello = LinkPair.hello(2),
         dialerIdentity: IdentityKey? = nil, acceptorIdentity: IdentityKey? = nil) {
        dialer = Endpoint(initiator: true, hello: dialerHello, psk: dialerPSK, keyring: dialerPSK.map { [$0] } ?? [],
                          identity: dialerIdentity, now: now)
        acceptor = Endpoint(initiator: false, hello: acceptorHello, psk: acceptorPSK,
                            keyring: acceptorKeyring ?? acceptorPSK.map { [$0] } ?? [], identity: acceptorIdentity, now: now)
    }

    static let psk = PreSharedKey(key: [UInt8](repeating: 0x11, count: 32))
    static let otherPSK = PreSharedKey(key: [UInt8](repeating: 0x22, count: 32))

    /// Router n's identity key: the private key is 32 bytes of n. The names of 1, 2 and 3 sort
    /// 1 < 3 < 2 (0e:85:…, a2:5d:…, da:35:…).
    static func identity(_ n: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: n, count: 32)) }

    /// The key of the router `hello(n)` names, n from 1 to 9.
    static func identity(named name: PeerName) -> IdentityKey {
        let keys = (1...9).map(identity)
        guard let key = keys.first(where: { PeerName(bytes: $0.peerNameBytes) == name }) else { preconditionFailure("no test router is named \(name)") }
        return key
    }

    static func hello(_ n: UInt8, uid: UInt64? = nil) -> Hello {
        Hello(name: PeerName(bytes: identity(n).peerNameBytes), nickname: "host-\(n)", uid: uid ?? UInt64(n), connectionId: UInt64(n) << 8,
              gossipPort: 6783, sleevePort: 6783, shortId: UInt16(n), trustsRemote: false, fastdpCapable: false, overlays: 1, ciphers: 1)
    }

    /// Both ends write their preambles; nothing is delivered yet.
    func start() {
        dialer.perform(dialer.machine.start(now: now), now: now)
        acceptor.perform(acceptor.machine.start(now: now), now: now)
    }

    /// Delivers what the dialer wrote so far to the acceptor, in one read.
    func toAcceptor() { deliver(from: dialer, to: acceptor) }
    /// Delivers what the acceptor wrote so far to the dialer, in one read.
    func toDialer() { deliver(from: acceptor, to: dialer) }

    /// Delivers in both directions until neither end has anything more to say.
    func pump() {
        for _ in 0..<100 where !(dialer.outbox.isEmpty && acceptor.outbox.isEmpty) {
            toAcceptor()
            toDialer()
        }
    }

    /// Starts and pumps: a link that establishes does so here.
    func connect() {
        start()
        pump()
    }

    func tick(_ end: Endpoint) { end.perform(end.machine.tick(now: now), now: now) }

    func advance(seconds: Double) { now += UInt64(seconds * 1e9) }

    private func deliver(from: Endpoint, to: Endpoint) {
        guard !from.outbox.isEmpty else { return }
        let bytes = from.outbox
        from.outbox = []
        to.receive(bytes, now: now)
    }
}
