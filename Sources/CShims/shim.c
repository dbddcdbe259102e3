#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/syscall.h>
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
