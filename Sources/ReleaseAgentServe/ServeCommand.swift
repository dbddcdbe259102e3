import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ReleaseAgent
import ServiceLifecycle

public struct ServeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "serve", abstract: CommandText.serve)

    @OptionGroup var settings: SettingsOptions

    public init() {}

    public func run() async throws {
        let resolved = try settings.resolve()
        _ = try RemoteURL.normalize(try resolved.requireRepo())
        let secret = try Self.readSecret(resolved)
        let (host, port) = try Self.parseListen(resolved.listen)
        try resolved.layout.create()

        let logger = Self.makeLogger(json: resolved.logFormat == "json")
        let output = Output(json: resolved.logFormat == "json")
        let queue = DeployQueue(settings: resolved, output: output, logger: logger)
        let server = WebhookServer(
            verifier: WebhookVerifier(secret: secret, branch: resolved.branch), queue: queue, metrics: ServeMetrics(),
            deliveries: DeliveryBook(), settings: resolved, logger: logger)
        if let pidFile = resolved.pidFile {
            try FileSystem.writeAtomically(Data("\(getpid())\n".utf8), to: pidFile)
        }
        defer { if let pidFile = resolved.pidFile { unlink(pidFile) } }
        let hangup = Self.onSIGHUP { Task { await queue.trigger("sighup") } }
        defer { hangup.cancel() }

        let http = try HTTPService.make(
            router: server.router(), host: host, port: port, idleTimeout: WebhookServer.idleTimeout, logger: logger
        ) { channel in
            let address = channel.localAddress.map { "\($0)" } ?? resolved.listen
            output.line("serve    listening on \(address) for \(resolved.branch) of \(resolved.repo ?? "")")
            SystemdNotify.send("READY=1")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: DeployQueueService(queue: queue, grace: resolved.shutdownGrace, logger: logger)),
                    .init(service: PollerService(queue: queue, interval: resolved.pollInterval)),
                    .init(service: http),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        output.line("serve    stopped")
    }

    static func readSecret(_ settings: Settings) throws -> [UInt8]? {
        guard let file = settings.webhookSecretFile else {
            guard settings.allowUnsigned else {
                throw AgentError.usage(
                    "serve needs a webhook secret: set webhook-secret-file (or --allow-unsigned, for testing only)")
            }
            return nil
        }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw AgentError.usage("the webhook secret file \(file) cannot be read; check the path and its permissions")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else {
            throw AgentError.usage("the webhook secret file \(file) is empty; put the secret in it")
        }
        return Array(secret.utf8)
    }

    /// `127.0.0.1:9000`, `[::1]:9000`, `:9000` (loopback).
    static func parseListen(_ listen: String) throws -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw AgentError.usage("listen '\(listen)' is not host:port; write it like 127.0.0.1:9000")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    static func makeLogger(json: Bool) -> Logger {
        var logger = Logger(label: "release-agent") { label in
            json ? JSONLogHandler(label: label) as any LogHandler : StreamLogHandler.standardError(label: label)
        }
        let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .info
        return logger
    }

    static func onSIGHUP(_ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}

/// swift-log handler writing one JSON object a line to stderr.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var object: [String: String] = [
            "time": ISO8601DateFormatter().string(from: Date()), "level": level.rawValue,
            "message": "\(message)", "label": label,
        ]
        for (key, value) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = "\(value)"
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        FileHandle.standardError.write(data + Data("\n".utf8))
    }
}
