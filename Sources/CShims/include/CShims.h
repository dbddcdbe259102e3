#ifndef CSHIMS_H
#define CSHIMS_H
#include <spawn.h>

/* GNU extensions Swift's Glibc module does not export. */
int cshims_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
int cshims_pipe_cloexec(int fds[2]);
/* Close every descriptor >= lowfd in the child, so builds and hooks inherit nothing. */
int cshims_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/* syncfs(2) on the file system holding fd. */
int cshims_syncfs(int fd);
#endif
