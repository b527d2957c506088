// Linux calls Glibc's Swift module does not show (they need _GNU_SOURCE).
#ifndef FLEDGE_CLINUX_H
#define FLEDGE_CLINUX_H
#include <sys/types.h>
#include <sys/epoll.h>
#include <netinet/tcp.h>

/// sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE): start writeback, do not wait.
int fledge_start_writeback(int fd, off_t offset, off_t length);
#endif
