// A relay's listener: binding one (bindTcp, bindUdp), checking an fd handed in from JavaScript, and making
// sure one fd serves one relay. Plain C++ (no N-API); Linux only, like the relays.
//
// Every socket here is close-on-exec from creation (SOCK_CLOEXEC): a backend Berth spawns must never
// inherit a listener (docs/forwarding.md).
#ifndef BERTH_NATIVE_LISTENER_H_
#define BERTH_NATIVE_LISTENER_H_

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <mutex>
#include <string>
#include <unordered_set>

#include "os_error.h"
#include "socket_address.h"
#include "unique_fd.h"

namespace berth {

// Node's own backlog, and libuv's SO_REUSEADDR: a port bound here behaves like one net.Server binds.
constexpr int kTcpBacklog = 511;

// A non-blocking, close-on-exec socket of `type` (SOCK_STREAM: listening, with SO_REUSEADDR as libuv sets
// it, so a port in TIME_WAIT can be listened on again at once) bound to `addr`. Into *out, or an OsError.
inline OsError BindListener(int type, const sockaddr_storage& addr, socklen_t len, UniqueFd* out) {
  UniqueFd sock(socket(addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return {errno, "socket", Describe(addr)};
  if (type == SOCK_STREAM) {
    int one = 1;
    if (setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
      return {errno, "setsockopt", Describe(addr)};
    }
  }
  if (bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    return {errno, "bind", Describe(addr)};
  }
  if (type == SOCK_STREAM && listen(sock.get(), kTcpBacklog) != 0) return {errno, "listen", Describe(addr)};
  *out = std::move(sock);
  return {};
}

// A listener fd handed in from JavaScript must be a socket of `type` ("datagram" / "stream" in
// `type_name`): anything else would fail later, in the loop, where no caller hears of it. `what` names the
// fd in errors.
inline OsError CheckSocketType(int fd, int type, const char* type_name, const std::string& what) {
  struct stat st;
  if (fstat(fd, &st) != 0) return {errno, "fstat", what};
  if (!S_ISSOCK(st.st_mode)) return {ENOTSOCK, "fstat", what + " is not a socket"};
  int actual = 0;
  socklen_t actual_len = sizeof(actual);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &actual, &actual_len) != 0) return {errno, "getsockopt", what};
  if (actual != type) return {EPROTOTYPE, "getsockopt", what + " is not a " + type_name + " socket"};
  return {};
}

// The relays only ever read and write without blocking, whatever mode the fd came in.
inline OsError SetNonBlocking(int fd, const std::string& what) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return {errno, "fcntl", what};
  return {};
}

// One listener fd serves at most one relay: two relays on one fd would both close it, and the second close
// could hit the number reused by another file. The relays of every thread share the process's fd table, so
// the claims are process-wide, behind a lock that is only taken when a relay starts or closes.
class ListenerClaim {
 public:
  ListenerClaim() = default;
  ListenerClaim(const ListenerClaim&) = delete;
  ListenerClaim& operator=(const ListenerClaim&) = delete;
  ~ListenerClaim() { Drop(); }

  // False when another relay holds `fd` already.
  bool Take(int fd) {
    std::lock_guard<std::mutex> lock(Lock());
    if (!Claimed().insert(fd).second) return false;
    fd_ = fd;
    return true;
  }

  // Once the relay closed the fd.
  void Drop() {
    if (fd_ < 0) return;
    std::lock_guard<std::mutex> lock(Lock());
    Claimed().erase(fd_);
    fd_ = -1;
  }

 private:
  // Never destroyed: a worker's relay may close while the process exits and runs static destructors.
  static std::mutex& Lock() {
    static auto* lock = new std::mutex();
    return *lock;
  }
  static std::unordered_set<int>& Claimed() {
    static auto* claimed = new std::unordered_set<int>();
    return *claimed;
  }

  int fd_ = -1;
};

}  // namespace berth

#endif  // __linux__

#endif  // BERTH_NATIVE_LISTENER_H_
