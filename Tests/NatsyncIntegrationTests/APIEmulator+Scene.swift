import Foundation
import NatsyncAPIEmulator

extension APIEmulator {
    /// An emulator serving HTTPS with a certificate from a CA made in `scene`'s folder.
    static func https(in scene: Scene, clientCertificates: Bool = false) throws -> (APIEmulator, TestPKI) {
        try https(in: scene.folder, clientCertificates: clientCertificates)
    }

    /// A kubeconfig in `scene`'s folder for this emulator, its user's fields given as YAML flow.
    func kubeconfig(in scene: Scene, user: String) throws -> String {
        try kubeconfig(in: scene.folder, user: user)
    }
}
