import Foundation

/// Links `ROOT/shared/<path>` into a release, replacing what the checkout put there.
package struct SharedLinks {
    let layout: Layout

    package init(layout: Layout) { self.layout = layout }

    package func link(_ paths: [String], into release: String) throws {
        for path in paths {
            let source = layout.shared + "/" + path
            guard FileSystem.exists(source) else {
                throw AgentError.failed(
                    "shared path \(source) does not exist; create it (file or directory) before deploying")
            }
            let destination = release + "/" + path
            let parent = (destination as NSString).deletingLastPathComponent
            try FileSystem.makeDirectory(parent)
            try FileSystem.removeTree(destination)
            let depth = path.split(separator: "/").count - 1
            let up = String(repeating: "../", count: depth + 2)
            // Relative, so the release stays valid if the root is moved: releases/<sha>/<path> -> ../../shared/<path>
            guard symlink(up + "shared/" + path, destination) == 0 else {
                throw AgentError.failed("cannot link \(destination) to \(source): \(FileSystem.errnoText())")
            }
        }
    }
}
