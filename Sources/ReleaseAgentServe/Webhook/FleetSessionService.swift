import Logging
import ReleaseAgentFleet
import ServiceLifecycle

/// Keeps serve's fleet registration alive: a keepalive every third of the lease TTL until
/// the graceful shutdown. The keepalive is one short HTTP request, bounded by its timeout.
struct FleetSessionService: Service {
    let session: FleetSession
    let logger: Logger

    func run() async throws {
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: session.renewEvery) }
            } catch {
                return
            }
            do {
                try session.renew()
            } catch {
                logger.warning("fleet registration not renewed: \(error)")
            }
        }
    }
}
