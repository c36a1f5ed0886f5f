import Foundation
import NatsyncIPTables
import Testing

struct ProbabilityTests {
    @Test(arguments: [
        (1, "1.0000000000"), (2, "0.5000000000"), (3, "0.3333333333"), (4, "0.2500000000"), (5, "0.2000000000"),
        (6, "0.1666666667"), (7, "0.1428571429"), (8, "0.1250000000"), (9, "0.1111111111"), (10, "0.1000000000"),
        (100, "0.0100000000"), (1000, "0.0010000000"), (10000, "0.0001000000"), (100000, "0.0000100000"),
        (100001, "0.0000099999"),
    ])
    func textIsGoPercentPoint10F(n: Int, text: String) {
        #expect(Probability(oneIn: n).text == text)
    }

    /// The probabilities kept formatted (below 256) and those computed each time agree with C's
    /// `%.10f` (what Go's prints for these) on both sides of the boundary.
    @Test func everySmallCountIsPrintedAsPrintfDoes() {
        for n in 1...300 {
            let probability = Probability(oneIn: n)
            #expect(probability.text == String(format: "%.10f", 1.0 / Double(n)), "n = \(n)")
            #expect(probability == Probability(text: probability.text), "n = \(n)")
        }
    }

    /// The kernel values of the reference's table (section 8.4), and how iptables-save prints them.
    @Test(arguments: [
        (2, UInt32(1_073_741_824), "0.50000000000"), (3, 715_827_883, "0.33333333349"), (4, 536_870_912, "0.25000000000"),
        (5, 429_496_730, "0.20000000019"), (6, 357_913_941, "0.16666666651"), (7, 306_783_378, "0.14285714272"),
        (8, 268_435_456, "0.12500000000"), (9, 238_609_294, "0.11111111101"), (10, 214_748_365, "0.10000000009"),
    ])
    func kernelValueIsLroundOfTheText(n: Int, kernel: UInt32, saved: String) {
        let probability = Probability(oneIn: n)
        #expect(probability.kernelValue == kernel)
        #expect(Probability(kernelValue: kernel).text == saved)
        #expect(Probability(text: saved) == probability)
    }

    @Test func equalityIsTheKernelValueNotTheText() {
        #expect(Probability(text: "0.3333333333") == Probability(text: "0.33333333349"))
        #expect(Probability(text: "0.3333333333") != Probability(text: "0.3333333"))
        #expect(Probability(text: "1.5") == nil)
        #expect(Probability(text: "abc") == nil)
    }
}
