import Dispatch

extension Collection where Index == Int, Element: Sendable {
    /// `map` in contiguous chunks spread over the cores, results in order; below `minimumCount`
    /// elements a plain map. For the per-item work of a large cluster that is a pure function of
    /// each item: decoding a kubectl List's items, generating each service port's rules.
    ///
    /// Each result is written straight into its place in the output, not gathered per chunk and
    /// copied: a copy retains every reference a result holds, and those were made on another core.
    @inlinable
    public func concurrentMap<T: Sendable>(minimumCount: Int = 1_024, _ transform: @Sendable (Element) -> T) -> [T] {
        guard count >= minimumCount else { return map(transform) }
        let elements = Array(self)
        let chunks = 16
        let size = (elements.count + chunks - 1) / chunks
        return [T](unsafeUninitializedCapacity: elements.count) { buffer, initialized in
            let output = ChunkOutput(buffer: buffer)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                for index in Swift.min(chunk * size, elements.count)..<Swift.min((chunk + 1) * size, elements.count) {
                    (output.buffer.baseAddress! + index).initialize(to: transform(elements[index]))
                }
            }
            initialized = elements.count
        }
    }
}

/// Each chunk initializes only its own range of the output, which outlives the concurrent loop.
@usableFromInline
struct ChunkOutput<T>: @unchecked Sendable {
    @usableFromInline let buffer: UnsafeMutableBufferPointer<T>

    @inlinable init(buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}

extension Array {
    /// The elements of `parts` in order, each moved out of its part rather than copied.
    ///
    /// Copying retains every reference an element holds; when the parts were built on other
    /// cores (a large cluster's hundred thousand chains), touching each of those references again
    /// was most of the cost of joining them. A part that is shared is copied first, as any
    /// mutation would, so the caller's other copies are untouched.
    @inlinable
    public init(joining parts: consuming [[Element]]) {
        let total = parts.reduce(0) { $0 + $1.count }
        self.init(unsafeUninitializedCapacity: total) { buffer, initialized in
            parts.withUnsafeMutableBufferPointer { parts in
                for index in parts.indices {
                    var part: [Element] = []
                    swap(&part, &parts[index])
                    initialized += part.count
                    var position = initialized
                    // popLast hands each element over without retaining what it holds.
                    while let element = part.popLast() {
                        position -= 1
                        (buffer.baseAddress! + position).initialize(to: element)
                    }
                }
            }
        }
    }
}
