import Dispatch

extension Collection where Index == Int, Element: Sendable {
    /// `map` in contiguous chunks spread over the cores, results in order; below `minimumCount`
    /// elements a plain map. For the per-item work of a large cluster that is a pure function of
    /// each item: decoding a kubectl List's items, generating each service port's rules.
    public func concurrentMap<T: Sendable>(minimumCount: Int = 1_024, _ transform: @Sendable (Element) -> T) -> [T] {
        guard count >= minimumCount else { return map(transform) }
        let chunks = 16
        let results = UnsafeMutableBufferPointer<[T]>.allocate(capacity: chunks)
        results.initialize(repeating: [])
        defer {
            results.deinitialize()
            results.deallocate()
        }
        let output = ChunkResults(buffer: results)
        let elements = Array(self)
        let size = (elements.count + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let range = Swift.min(chunk * size, elements.count)..<Swift.min((chunk + 1) * size, elements.count)
            output.buffer[chunk] = elements[range].map(transform)
        }
        return Array(results.joined())
    }
}

/// Each chunk writes only its own slot, and the buffer outlives the concurrent loop.
private struct ChunkResults<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<[T]>
}
