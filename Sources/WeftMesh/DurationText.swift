// Durations as operators write them on the command line: `30s`, `10m`, `1h`, `1h30m`, `90`.

public enum DurationText {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let text: String
        public var description: String { "'\(text)' is not a duration: write it like 30s, 10m, 1h or 1h30m" }
    }

    /// Seconds; a bare number counts as seconds.
    public static func seconds(_ text: String) throws -> Double {
        if let plain = Double(text), plain >= 0 { return plain }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for c in text {
            if c.isNumber || c == "." {
                number.append(c)
                continue
            }
            guard let value = Double(number) else { throw ParseError(text: text) }
            switch c {
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            case "d": total += value * 86400
            default: throw ParseError(text: text)
            }
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else { throw ParseError(text: text) }
        return total
    }
}
