/// The one version string: both binaries' `--version`, and `release_agent_build_info` in
/// `/metrics`. (The Debian package script of issue 15 is to read it from here.)
public enum ReleaseAgentVersion {
    public static let string = "0.10.0"
}
