// Linux calls Glibc's Swift module does not show (they need _GNU_SOURCE).
#ifndef FLEDGE_CLINUX_H
#define FLEDGE_CLINUX_H
#include <sys/types.h>
#include <sys/epoll.h>
#include <netinet/tcp.h>

/// sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE): start writeback, do not wait.
int fledge_start_writeback(int fd, off_t offset, off_t length);
/// One sd_notify(3) datagram (`READY=1`, `WATCHDOG=1`) to the service manager's socket `path`
/// (`@name`: an abstract socket). 0, or the errno that stopped it.
int fledge_notify(const char *path, const char *message);
/// pipe2(fds, O_CLOEXEC): a pipe no other child started meanwhile inherits. 0, or -1 and errno.
int fledge_pipe_cloexec(int fds[2]);
#endif
