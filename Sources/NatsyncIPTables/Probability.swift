/// The probability of a `statistic --mode random` match.
///
/// The value is the kernel's: `lround(2^31 × p)`, matched as `(random & 0x7FFFFFFF) < value`. Two
/// probabilities are equal when the kernel holds the same value, whatever text they were written as;
/// ``text`` is only how this one is printed.
public struct Probability: Hashable, Sendable, CustomStringConvertible {
    /// The fixed-point value in the kernel's `xt_statistic_info`.
    public let kernelValue: UInt32
    /// The decimal text this probability is printed as.
    public let text: String

    /// The probability of picking one of `n` remaining endpoints, as kube-proxy writes it:
    /// Go's `%0.10f` of `1/n`, held as `lround(2^31 × that text)`, bit-identical with what
    /// `iptables-restore` stores for kube-proxy's rules.
    public init(oneIn n: Int) {
        precondition(n > 0, "a probability needs at least one endpoint")
        // Every service's dispatch rules ask for the same few: formatted and parsed once.
        self = n < Self.common.count ? Self.common[n] : Self(computingOneIn: n)
    }

    private init(computingOneIn n: Int) {
        self.init(text: DecimalFormatting.fixed(1.0 / Double(n), fractionDigits: 10))!
    }

    /// `oneIn: n` for n below 256 (index 0 unused).
    private static let common = (0..<256).map { Probability(computingOneIn: max($0, 1)) }

    /// Parses decimal text the way `libxt_statistic` does (`strtod`, then `lround(2^31 × p)`).
    public init?(text: String) {
        guard let value = Double(text), value >= 0, value <= 1 else { return nil }
        self.text = text
        self.kernelValue = UInt32((value * 2_147_483_648.0).rounded(.toNearestOrAwayFromZero))
    }

    /// A probability read back from the kernel, printed as `iptables-save` prints it (`%.11f`).
    public init(kernelValue: UInt32) {
        self.kernelValue = kernelValue
        self.text = DecimalFormatting.fixed(Double(kernelValue) / 2_147_483_648.0, fractionDigits: 11)
    }

    public var description: String { text }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.kernelValue == rhs.kernelValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(kernelValue) }
}

/// Exact fixed-point formatting of a `Double`, as C's and Go's `%.Nf` do it (the exact binary
/// value, rounded half to even), without Foundation.
enum DecimalFormatting {
    static func fixed(_ value: Double, fractionDigits: Int) -> String {
        precondition(value >= 0 && value.isFinite && fractionDigits <= 17)
        var scale: UInt128 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let significand = UInt128(value.significandBitPattern | (value == 0 ? 0 : 1 << 52))
        let exponent = Int(value.exponent) - 52
        let scaled: UInt128
        if value == 0 {
            scaled = 0
        } else if exponent >= 0 {
            scaled = (significand << exponent) * scale
        } else if -exponent >= 127 {
            scaled = 0
        } else {
            let product = significand * scale
            let shift = -exponent
            let quotient = product >> shift
            let remainder = product & ((1 << shift) - 1)
            let half: UInt128 = 1 << (shift - 1)
            if remainder > half || (remainder == half && quotient & 1 == 1) {
                scaled = quotient + 1
            } else {
                scaled = quotient
            }
        }
        let integerPart = scaled / scale
        var fraction = String(scaled % scale)
        if fraction.count < fractionDigits {
            fraction = String(repeating: "0", count: fractionDigits - fraction.count) + fraction
        }
        return fractionDigits == 0 ? "\(integerPart)" : "\(integerPart).\(fraction)"
    }
}
