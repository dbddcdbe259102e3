/// The one version string: both binaries' `--version`, and `release_agent_build_info` in
/// `/metrics`; packaging/deb.sh reads it from this line for the package and its man pages.
public enum ReleaseAgentVersion {
    public static let string = "0.10.0"
}
