#ifndef CLIBGIT2_SHIM_H
#define CLIBGIT2_SHIM_H
#include <git2.h>
#include <libssh2.h>
#include <string.h>

/* git_libgit2_opts is variadic, which Swift cannot call: small wrappers. */
static inline int clibgit2_disable_owner_validation(void) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
}
static inline int clibgit2_disable_strict_object_creation(void) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
}
static inline int clibgit2_disable_fsync_gitdir(void) {
    return git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
}

/* An ssh host key against an OpenSSH known_hosts file, with libssh2's own known-hosts
   functions (no parser of ours). Returns 0 match, 1 a different key is recorded for the
   host (changed), 2 the host is not in the file, 3 the file cannot be read, -1 failure. */
static inline int clibgit2_known_host(const char *path, const char *host, int port,
                                      const char *key, size_t key_len, int raw_type) {
    int key_type;
    switch (raw_type) {
    case GIT_CERT_SSH_RAW_TYPE_RSA: key_type = LIBSSH2_KNOWNHOST_KEY_SSHRSA; break;
    case GIT_CERT_SSH_RAW_TYPE_DSS: key_type = LIBSSH2_KNOWNHOST_KEY_SSHDSS; break;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: key_type = LIBSSH2_KNOWNHOST_KEY_ECDSA_256; break;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: key_type = LIBSSH2_KNOWNHOST_KEY_ECDSA_384; break;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: key_type = LIBSSH2_KNOWNHOST_KEY_ECDSA_521; break;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: key_type = LIBSSH2_KNOWNHOST_KEY_ED25519; break;
    default: return -1;
    }
    LIBSSH2_SESSION *session = libssh2_session_init();
    if (!session) return -1;
    LIBSSH2_KNOWNHOSTS *hosts = libssh2_knownhost_init(session);
    int result = -1;
    if (hosts) {
        if (libssh2_knownhost_readfile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
            result = 3;
        } else {
            struct libssh2_knownhost *found = NULL;
            int check = libssh2_knownhost_checkp(hosts, host, port, key, key_len,
                LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_type, &found);
            switch (check) {
            case LIBSSH2_KNOWNHOST_CHECK_MATCH: result = 0; break;
            case LIBSSH2_KNOWNHOST_CHECK_MISMATCH: result = 1; break;
            case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND: result = 2; break;
            default: result = -1;
            }
        }
        libssh2_knownhost_free(hosts);
    }
    libssh2_session_free(session);
    return result;
}

/* The class of the last libgit2 error (GIT_ERROR_*), or 0 when there is none. */
static inline int clibgit2_last_error_class(void) {
    const git_error *error = git_error_last();
    return error ? error->klass : 0;
}
#endif
