#ifndef CLIBGIT2_SHIM_H
#define CLIBGIT2_SHIM_H
#include <git2.h>

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
#endif
