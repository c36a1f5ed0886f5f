import Foundation
import NatsyncIPTables
import NatsyncManifest
import NatsyncWire

/// One fuzz input for each target: the first byte picks the target, the rest is the input.
/// Targets must never crash, whatever the bytes: the manifest loader (YAML or JSON, as a file
/// would give them) and the iptables-restore parser.
func fuzzOne(_ bytes: UnsafeRawBufferPointer) {
    guard let selector = bytes.first else { return }
    let input = Array(bytes.dropFirst())
    switch selector % 3 {
    case 0:
        var loader = ManifestLoader()
        _ = loader.add(contents: input, file: "fuzz.yaml")
        _ = loader.result()
        checkYAMLFastPath(input)
    case 1:
        var loader = ManifestLoader()
        _ = loader.add(contents: input, file: "fuzz.json")
        _ = loader.result()
    default:
        _ = try? RestoreText.parse(String(decoding: input, as: UTF8.self))
    }
}

/// The YAML fast path reads a List exactly as the general path (Yams' tree, decoded whole)
/// does, or leaves it to that path: a difference is a crash, which libFuzzer reports.
func checkYAMLFastPath(_ input: [UInt8]) {
    guard input.withUnsafeBufferPointer({ (try? UTF8Span(validating: $0.span)) != nil }),
        let fast = input.withUnsafeBufferPointer({ ManifestLoader.decodeYAMLListItems($0, minimumItems: 0) { $0.objects } })
    else { return }
    let general = try? ManifestLoader.decodeDocuments(String(decoding: input, as: UTF8.self)).flatMap(\.objects)
    let read = fast.joined()
    precondition(
        general.map { $0.map(\.0) == read.map(\.0) && $0.map(\.1) == read.map(\.1) } == true,
        "the YAML fast path read differently from the general path")
}

#if NATSYNC_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// SwiftPM links an executable's entry point as `<module>_main`; libFuzzer's driver runs from there.
@_cdecl("natsync_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzEntry(data, size) }
}
#else
/// Without libFuzzer: replays every file of the given corpus folders, so `make test` keeps the
/// corpus passing.
@main
struct Replay {
    static func main() throws {
        var count = 0
        for folder in CommandLine.arguments.dropFirst() {
            for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
                let data = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name))
                data.withUnsafeBytes(fuzzOne)
                count += 1
            }
        }
        print("natsync-fuzz: \(count) inputs replayed, no crash")
    }
}
#endif
