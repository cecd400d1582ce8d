// A move-only owner of one file descriptor: closing on every error path is the destructor's job, so no
// early return can leak an fd (the failure mode of hand-written close() calls on each path).
#ifndef BERTH_NATIVE_UNIQUE_FD_H_
#define BERTH_NATIVE_UNIQUE_FD_H_

#include <errno.h>
#include <unistd.h>

namespace berth {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Hands the fd to a new owner (JavaScript, a sendmsg that transfers it) without closing it.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // close() is not retried on EINTR: on Linux the fd is gone either way and a retry could close a reused
  // number; errno is preserved so callers can still report the error that made them give up.
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      int saved = errno;
      ::close(fd_);
      errno = saved;
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace berth

#endif  // BERTH_NATIVE_UNIQUE_FD_H_
