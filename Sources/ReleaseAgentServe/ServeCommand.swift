import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import ReleaseAgent
import ReleaseAgentFleet
import ServiceLifecycle
import Synchronization

public struct ServeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "serve", abstract: CommandText.serve)

    @OptionGroup var settings: SettingsOptions

    public init() {}

    public func run() async throws {
        // SIGHUP's default action ends the process: ignored from the first instant (a reload
        // sent while serve starts), taken by HangupService once it runs.
        signal(SIGHUP, SIG_IGN)
        let resolved = try settings.resolve()
        _ = try RemoteURL.normalize(try resolved.requireRepo())
        let secret = try Self.readSecret(resolved)
        let listen = resolved.listen
        try resolved.layout.create()
        // How `resume` tells this root's serve from whatever a stale pid-file names.
        ServeIdentity.hold(resolved.layout)

        let logger = Self.makeLogger(json: resolved.logFormat == .json)
        let output = Output(json: resolved.logFormat == .json)
        // Fleet mode: the fleet polls the remote once per interval, not each host (FleetPollService).
        let signals = try FleetSignals(settings: resolved, output: output)
        var sawHead: (@Sendable (CommitID) -> Void)?
        if let signals { sawHead = { head in signals.publish(head: head.hex) } }
        // Fleet mode: registered before the port is bound, so a second agent with this
        // host-id exits 2 at once; deregistered when serve stops. Its deploys' gates use it.
        let session = try FleetSession.start(resolved, output: output)
        defer { session?.stop() }
        var capabilities = Capabilities.process
        if let session { capabilities.fleetGate = EtcdFleetGate.maker(session: session) }
        let queue = DeployQueue(
            settings: resolved, output: output, logger: logger, capabilities: capabilities, sawHead: sawHead)
        let server = WebhookServer(
            verifier: WebhookVerifier(secret: secret, branch: resolved.branch), queue: queue, metrics: ServeMetrics(),
            deliveries: DeliveryBook(), settings: resolved, logger: logger)
        // The pid-file is written once the port is bound, and removed only by the daemon that
        // wrote it: a second serve that cannot bind leaves the running one's file alone.
        let pidWritten = PidFileState()
        defer { if let pidFile = resolved.pidFile, pidWritten.written { unlink(pidFile) } }
        try Self.checkPidDirectory(resolved)
        let http = try Self.makeHTTP(server, resolved, output: output, logger: logger, pidWritten: pidWritten)
        let services = makeServices(
            session: session, queue: queue, signals: signals, http: http, resolved: resolved, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as IOError {
            throw Self.explainBind(error, listen: listen.description) ?? error
        }
        output.line("serve    stopped")
    }

    private static func checkPidDirectory(_ resolved: Settings) throws {
        guard let pidFile = resolved.pidFile else { return }
        let directory = (pidFile as NSString).deletingLastPathComponent
        guard FileSystem.isDirectory(directory.isEmpty ? "." : directory) else {
            throw AgentError.usage(
                "pid-file \(pidFile): the directory \(directory) does not exist; create it or point pid-file elsewhere")
        }
    }

    /// The HTTP service; once the port is bound it writes the pid-file and tells systemd.
    private static func makeHTTP(
        _ server: WebhookServer, _ resolved: Settings, output: Output, logger: Logger, pidWritten: PidFileState
    ) throws -> any Service {
        let listen = resolved.listen
        return try HTTPService.make(
            router: server.router(), host: listen.host, port: listen.port(slot: nil),
            idleTimeout: WebhookServer.idleTimeout, logger: logger
        ) { channel in
            let address = channel.localAddress.map { "\($0)" } ?? listen.description
            if let pidFile = resolved.pidFile {
                do {
                    try FileSystem.writeAtomically(Data("\(getpid())\n".utf8), to: pidFile)
                    pidWritten.set()
                } catch {
                    output.line("serve    warning: \(error)")
                }
            }
            output.line("serve    listening on \(address) for \(resolved.branch) of \(resolved.repo ?? "")")
            SystemdNotify.send("READY=1")
        }
    }

    /// The daemon's services, in the order they start (the group stops them in reverse).
    private func makeServices(
        session: FleetSession?, queue: DeployQueue, signals: FleetSignals?, http: any Service, resolved: Settings,
        logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        // The group stops its services in reverse order: the fleet session first in the list,
        // so its lease is kept alive until the deploy queue has stopped.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let poller: any Service =
            if let signals {
                FleetPollService(
                    queue: queue, signals: signals, interval: resolved.pollInterval, layout: resolved.layout)
            } else {
                PollerService(queue: queue, interval: resolved.pollInterval)
            }
        if let session { services.append(.init(service: FleetSessionService(session: session, logger: logger))) }
        services += [
            .init(service: DeployQueueService(queue: queue, grace: resolved.shutdownGrace, logger: logger)),
            .init(service: poller),
            .init(service: HangupService(queue: queue, reread: settings.rereader)),
            .init(service: http),
        ]
        return services
    }

    /// A bind that failed, as the setting it came from: exit 2, one line, the fix.
    static func explainBind(_ error: IOError, listen: String) -> AgentError? {
        switch error.errnoCode {
        case EADDRINUSE:
            return .usage("listen \(listen) is in use (another serve?); stop it, or set listen to a free port")
        case EACCES:
            return .usage("listen \(listen) needs privileges to bind (a port below 1024); use a port above 1024")
        case EADDRNOTAVAIL:
            return .usage("listen \(listen) is not an address of this host; use 127.0.0.1 or one of its addresses")
        default:
            return nil
        }
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

    static func makeLogger(json: Bool) -> Logger {
        var logger = Logger(label: "release-agent") { label in
            json ? JSONLogHandler(label: label) as any LogHandler : StreamLogHandler.standardError(label: label)
        }
        let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .info
        return logger
    }
}

/// Whether this daemon wrote its pid-file (set from the server's on-running callback).
final class PidFileState: Sendable {
    private let flag = Mutex(false)
    var written: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
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
        StandardStream.error(String(decoding: data, as: UTF8.self) + "\n")
    }
}
