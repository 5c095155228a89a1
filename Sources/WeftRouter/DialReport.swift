// How a dial target's trouble reads to an operator: a socket error in plain words ("no route to
// host", not SwiftNIO's error dump), the `reason` status shows for the target (failing and
// retrying in N s, or dialing now), and the two log lines of a target that starts failing and
// recovers (docs/operations.md, "Reading `weft status`"). The wording is pure (tested in memory);
// the Router extension at the end logs it.
import Foundation
import NIOCore
import NIOPosix

enum DialReport {
    /// A connect or bind error as a person would say it: the errno's words in lower case, "timed
    /// out", or "cannot resolve HOST" for a name that does not resolve.
    static func describe(_ error: Error) -> String {
        switch error {
        case let io as IOError:
            return String(cString: strerror(io.errnoCode)).lowercased()
        case ChannelError.connectTimeout:
            return "timed out"
        case let connection as NIOConnectionError:
            if connection.connectionErrors.isEmpty, connection.dnsAError != nil || connection.dnsAAAAError != nil {
                return "cannot resolve \(connection.host)"
            }
            // One address tried (the usual case: a literal IP); several: the first one's error.
            guard let first = connection.connectionErrors.first else { return "no address to connect to" }
            return describe(first.error)
        case let channel as ChannelError:
            return "\(channel)"
        default:
            let text = "\(error)"
            if text.contains("connectTimeout") { return "timed out" }
            if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
            return text
        }
    }

    /// What failed, for `reason` and the log: "cannot connect to 10.55.0.77:6783: no route to host".
    static func connectFailure(_ address: String, _ error: Error) -> String {
        "cannot connect to \(address): \(describe(error))"
    }

    /// The `reason` of a target without a link. A dial in flight says so (with what went wrong
    /// last); a failing target between attempts says when the next one is.
    static func reason(lastFailure: String?, failures: Int, dialing: Bool, secondsToRetry: Double) -> String {
        if dialing {
            return lastFailure.map { "connecting now (last attempt: \($0))" } ?? "connecting now"
        }
        let what = lastFailure ?? "waiting to connect"
        guard failures > 0 else { return what }
        return "\(what) (retrying in \(Int(max(0, secondsToRetry).rounded(.up))) s)"
    }

    /// The line logged once when a target starts failing.
    static func failingMessage(_ failure: String, secondsToRetry: Double) -> String {
        "\(failure) (retrying in \(Int(max(0, secondsToRetry).rounded(.up))) s; logged once until it connects)"
    }

    /// The line logged once when a failing target connects again: dialed by this router, or
    /// (`inbound`) its peer dialed this router first.
    static func recoveredMessage(_ address: String, failures: Int, inbound: Bool = false) -> String {
        let attempts = "\(failures) failed attempt\(failures == 1 ? "" : "s")"
        return inbound ? "\(address) recovered: its peer connected to this router after \(attempts) to dial it"
            : "connected to \(address) again after \(attempts)"
    }
}

extension Router {
    /// Logs a target's failure the first time only (a peer down for an hour is one line, not
    /// hundreds); `secondsToRetry` is the backoff just chosen.
    func reportFailing(_ target: inout Target, _ failure: String, secondsToRetry: Double) {
        guard !target.reportedFailing else { return }
        target.reportedFailing = true
        logger.warning("\(DialReport.failingMessage(failure, secondsToRetry: secondsToRetry))", metadata: ["address": "\(target.address)"])
    }

    /// Logs that a target whose failing was logged connects again, either way round.
    func reportRecovered(_ target: inout Target, inbound: Bool) {
        guard target.reportedFailing else { return }
        target.reportedFailing = false
        logger.info("\(DialReport.recoveredMessage(target.address, failures: target.failures, inbound: inbound))", metadata: ["address": "\(target.address)"])
    }
}
