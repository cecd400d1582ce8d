// An epoll instance of one relay, polled by Node's loop as one fd. Plain C++ (no N-API, no libuv); Linux.
//
// The poller is kept apart from the state of what it watches, as haproxy keeps src/ev_epoll.c apart from
// src/fd.c: each watched socket's owner keeps an EpollWatch (what the socket is registered for) next to the
// socket, and EpollSet only turns changes of it into epoll_ctl calls, skipping those that change nothing.
#ifndef BERTH_NATIVE_EPOLL_SET_H_
#define BERTH_NATIVE_EPOLL_SET_H_

#ifdef __linux__
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include <cstdint>

#include "unique_fd.h"

namespace berth {

// What one socket is registered for in an EpollSet.
struct EpollWatch {
  uint32_t mask = 0;
  bool registered = false;
};

class EpollSet {
 public:
  // 0, or epoll_create1's errno. Close-on-exec from creation.
  int Open() {
    fd_.reset(epoll_create1(EPOLL_CLOEXEC));
    return fd_.valid() ? 0 : errno;
  }

  // What Node's loop polls; -1 once closed.
  int fd() const { return fd_.get(); }

  // Watches `fd` for `mask`, its events tagged `data` (a no-op when it is so already). A mask of 0 takes it
  // out: EPOLLHUP and EPOLLERR cannot be masked, and a socket with nothing to wait for would otherwise be
  // reported on every turn once its peer shut it. 0, or epoll_ctl's errno (only lack of memory does that).
  int Watch(int fd, EpollWatch* watch, uint32_t mask, uint64_t data) {
    if (mask == 0) {
      Unwatch(fd, watch);
      return 0;
    }
    if (watch->registered && watch->mask == mask) return 0;
    epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = mask;
    ev.data.u64 = data;
    if (epoll_ctl(fd_.get(), watch->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
    watch->registered = true;
    watch->mask = mask;
    return 0;
  }

  // Takes `fd` out before it is closed: a forked child may hold the socket open a moment longer, and the
  // epoll would keep reporting it, naming an owner that is gone.
  void Unwatch(int fd, EpollWatch* watch) {
    if (!watch->registered) return;
    epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    if (fd_.valid()) epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, &ev);
    watch->registered = false;
    watch->mask = 0;
  }

  // The events ready now, without waiting: their number, or -1 with errno set.
  int Ready(epoll_event* events, int max) { return epoll_wait(fd_.get(), events, max, 0); }

  // Every registration goes with the fd.
  void Close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace berth

#endif  // __linux__

#endif  // BERTH_NATIVE_EPOLL_SET_H_
