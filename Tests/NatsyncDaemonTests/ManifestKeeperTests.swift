import NatsyncManifest
import NatsyncModel
import Testing

@testable import NatsyncDaemon

/// What the daemon makes of manifests it cannot read: never an empty cluster.
struct ManifestKeeperTests {
    static func service(_ name: String, _ ip: String) -> [UInt8] {
        Array(
            "apiVersion: v1\nkind: Service\nmetadata: {name: \(name), namespace: default}\nspec: {clusterIP: \(ip), ports: [{port: 80}]}\n"
                .utf8)
    }

    static let web = service("web", "10.96.0.5")
    static let dns = service("dns", "10.96.0.10")
    static let broken = Array("apiVersion: v1\nkind: Service\nmetadata: {name: web\n".utf8)

    static func missing(_ name: String) -> ManifestReadError {
        ManifestReadError(path: name, reason: "no such file or directory", isMissing: true)
    }

    static func directory(_ files: [(String, Result<[UInt8], ManifestReadError>)], path: String = "/m") -> ManifestReading {
        ManifestReading(paths: [
            .init(path: path, files: .success(files.map { ManifestReading.File(name: "\(path)/\($0.0)", contents: $0.1) }))
        ])
    }

    static func names(_ outcome: ManifestKeeper.Outcome) -> [String]? {
        outcome.state.map { $0.services.map(\.name.name).sorted() }
    }

    @Test func aPathMissingAtStartIsWaitedForThenRead() {
        var keeper = ManifestKeeper()
        let absent = ManifestReading(paths: [.init(path: "/m/web.yaml", files: .failure(Self.missing("/m/web.yaml")))])
        let first = keeper.take(absent)
        #expect(first.state == nil)
        #expect(first.problems == ["/m/web.yaml: no such file or directory"])
        #expect(keeper.take(absent).state == nil, "still waiting, however long")
        let arrived = ManifestReading(paths: [
            .init(path: "/m/web.yaml", files: .success([.init(name: "/m/web.yaml", contents: .success(Self.web))]))
        ])
        #expect(Self.names(keeper.take(arrived)) == ["web"])
    }

    @Test func aFileThatDoesNotParseAtStartHoldsEverythingBack() {
        var keeper = ManifestKeeper()
        let outcome = keeper.take(Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .success(Self.broken))]))
        #expect(outcome.state == nil)
        #expect(outcome.problems.count == 1 && outcome.problems[0].hasPrefix("/m/web.yaml: cannot parse: line 4"), "\(outcome.problems)")
        #expect(
            Self.names(keeper.take(Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .success(Self.web))]))) == ["dns", "web"])
    }

    @Test func unreadableOrUnparseableLaterKeepsTheLastGoodContents() {
        var keeper = ManifestKeeper()
        #expect(
            Self.names(keeper.take(Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .success(Self.web))]))) == ["dns", "web"])
        let denied = ManifestReadError(path: "/m/web.yaml", reason: "permission denied")
        for _ in 0..<3 {
            let outcome = keeper.take(Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .failure(denied))]))
            #expect(Self.names(outcome) == ["dns", "web"])
            #expect(outcome.problems == ["/m/web.yaml: permission denied; keeping its last good contents"])
            #expect(!keeper.awaitsConfirmation, "an unreadable file is not a deletion")
        }
        let unparsed = keeper.take(Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .success(Self.broken))]))
        #expect(Self.names(unparsed) == ["dns", "web"])
        #expect(unparsed.diagnostics.allSatisfy { $0.severity != .error }, "the parse error is a problem, said once")
    }

    @Test func aFileGoneIsDeletedOnlyWhenTheNextLookStillFindsItGone() {
        var keeper = ManifestKeeper()
        let both = Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .success(Self.web))])
        _ = keeper.take(both)
        let onlyDNS = Self.directory([("dns.yaml", .success(Self.dns))])
        let first = keeper.take(onlyDNS)
        #expect(Self.names(first) == ["dns", "web"])
        #expect(first.deleted.isEmpty)
        #expect(keeper.awaitsConfirmation)
        let second = keeper.take(onlyDNS)
        #expect(Self.names(second) == ["dns"])
        #expect(second.deleted == ["/m/web.yaml"])
        #expect(!keeper.awaitsConfirmation)
        // Back again later: read as a new file.
        #expect(Self.names(keeper.take(both)) == ["dns", "web"])
    }

    @Test func aDanglingLinkIsAnUnconfirmedDeletion() {
        var keeper = ManifestKeeper()
        _ = keeper.take(Self.directory([("web.yaml", .success(Self.web))]))
        let dangling = Self.directory([("web.yaml", .failure(Self.missing("/m/web.yaml")))])
        #expect(Self.names(keeper.take(dangling)) == ["web"])
        #expect(Self.names(keeper.take(Self.directory([("web.yaml", .success(Self.web))]))) == ["web"], "it came back: nothing is deleted")
        #expect(!keeper.awaitsConfirmation)
        #expect(Self.names(keeper.take(dangling)) == ["web"])
        #expect(Self.names(keeper.take(dangling)) == [])
    }

    /// A ConfigMap whose key changed, seen between kubelet's switch of `..data` and its new
    /// visible link: the old name dangles, the new one is not there yet. Nothing goes away.
    @Test func aRenamedFileIsNeverSeenAsEverythingDeleted() {
        var keeper = ManifestKeeper()
        _ = keeper.take(Self.directory([("a.yaml", .success(Self.web))]))
        let window = keeper.take(Self.directory([("a.yaml", .failure(Self.missing("/m/a.yaml")))]))
        #expect(Self.names(window) == ["web"])
        let renamed = keeper.take(Self.directory([("b.yaml", .success(Self.web))]))
        #expect(Self.names(renamed) == ["web"])
        #expect(renamed.deleted == ["/m/a.yaml"])
    }

    @Test func aNamedPathGoneLaterIsWaitedForWithItsFilesKept() {
        var keeper = ManifestKeeper()
        _ = keeper.take(Self.directory([("dns.yaml", .success(Self.dns)), ("web.yaml", .success(Self.web))]))
        let gone = ManifestReading(paths: [.init(path: "/m", files: .failure(Self.missing("/m")))])
        for _ in 0..<3 {
            let outcome = keeper.take(gone)
            #expect(Self.names(outcome) == ["dns", "web"])
            #expect(outcome.deleted.isEmpty)
        }
    }

    @Test func aNewFileThatCannotBeReadAddsNothingAndKeepsTheRest() {
        var keeper = ManifestKeeper()
        _ = keeper.take(Self.directory([("web.yaml", .success(Self.web))]))
        let outcome = keeper.take(Self.directory([("dns.yaml", .success(Self.broken)), ("web.yaml", .success(Self.web))]))
        #expect(Self.names(outcome) == ["web"])
        #expect(outcome.problems.count == 1 && outcome.problems[0].contains("the file adds nothing"), "\(outcome.problems)")
    }

    @Test func anEmptyDirectoryIsNoServicesAndSaysSo() {
        var keeper = ManifestKeeper()
        let outcome = keeper.take(ManifestReading(paths: [.init(path: "/m", files: .success([]), emptyDirectories: ["/m"])]))
        #expect(Self.names(outcome) == [])
        #expect(outcome.diagnostics.map(\.description) == ["note: /m: no .yaml, .yml or .json file in this directory; it adds no services"])
    }
}
