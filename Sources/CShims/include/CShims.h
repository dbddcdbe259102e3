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
/* ioctl(dst, FICLONE, src): a reflink of the whole file; -1 with errno where the file system
   has none (ioctl is variadic, which Swift cannot call). */
int cshims_ficlone(int dst, int src);
/* copy_file_range(2) from the current offsets: the kernel copies without user space. */
long cshims_copy_file_range(int in, int out, unsigned long length);
#endif
