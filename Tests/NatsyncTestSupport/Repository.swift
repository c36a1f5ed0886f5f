import Foundation

/// The repository the tests were built from, whichever build folder they run in (`.build`,
/// `.build-asan`): found from this file's path, the one way every test target finds fixtures.
public enum Repository {
    /// The repository's root folder.
    public static let root: String =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `relative` (such as `Fixtures/seed/expected.rules`) inside the repository.
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The repository's `Fixtures/` folder.
    public static let fixtures = path("Fixtures")
}
