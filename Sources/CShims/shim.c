#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/fs.h>
#include "CShims.h"

int cshims_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int cshims_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cshims_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

int cshims_syncfs(int fd) {
    return syncfs(fd);
}

int cshims_ficlone(int dst, int src) {
    return ioctl(dst, FICLONE, src);
}

long cshims_copy_file_range(int in, int out, unsigned long length) {
    return (long)copy_file_range(in, NULL, out, NULL, length, 0);
}
