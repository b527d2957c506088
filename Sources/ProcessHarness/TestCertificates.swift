import Foundation

/// Certificates made by a real `openssl` for TLS on loopback: a CA, a server certificate for
/// 127.0.0.1 it signed (P-256, with the IP in subjectAltName), and a second CA that signed
/// nothing here (the wrong CA to pin).
public struct TestCertificates: Sendable {
    public let ca: String
    public let wrongCA: String
    public let certificate: String
    public let key: String

    /// Makes them in `directory` (a path that exists).
    public static func make(in directory: String) async throws -> TestCertificates {
        let openssl = try Binaries.tool("openssl")
        let d = directory
        for ca in ["ca", "wrong-ca"] {
            _ = try await ChildProcess.run(openssl, [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=fledge test \(ca)", "-keyout", "\(d)/\(ca).key", "-out", "\(d)/\(ca).pem"])
        }
        _ = try await ChildProcess.run(openssl, [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: "\(d)/san.ext", atomically: true, encoding: .utf8)
        _ = try await ChildProcess.run(openssl, [
            "x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "\(d)/san.ext", "-out", "\(d)/server.pem"])
        return TestCertificates(ca: "\(d)/ca.pem", wrongCA: "\(d)/wrong-ca.pem", certificate: "\(d)/server.pem", key: "\(d)/server.key")
    }
}
