/// Up to 48 bytes as six big-endian words, padded with NULs: ordered and equal as the bytes are
/// (strcmp's order, a shorter text first), compared as integers instead of byte by byte, and
/// made without keeping a string. Bytes beyond the 48th are not in the key: where they matter,
/// equal keys are told apart by the bytes themselves.
public struct ByteOrderKey: Hashable, Comparable, Sendable {
    @usableFromInline var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

    @inlinable
    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.prefix(48)))) }
        words = (
            UInt64(bigEndian: words.0), UInt64(bigEndian: words.1), UInt64(bigEndian: words.2),
            UInt64(bigEndian: words.3), UInt64(bigEndian: words.4), UInt64(bigEndian: words.5)
        )
    }

    @inlinable
    public init(_ text: String) {
        var text = text
        self = text.withUTF8(ByteOrderKey.init)
    }

    @inlinable
    public static func < (a: ByteOrderKey, b: ByteOrderKey) -> Bool { a.words < b.words }
    @inlinable
    public static func == (a: ByteOrderKey, b: ByteOrderKey) -> Bool { a.words == b.words }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: words) { hasher.combine(bytes: $0) }
    }
}
