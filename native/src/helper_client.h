// The client side of the berth-helper protocol (protocol.h), as plain C++: no N-API, no libuv, so the
// reply handling can be fuzzed like the frame parsers (native/fuzz/helper_reply_fuzz.cc). Its N-API layer
// is helper_napi.cc, which runs AskHelper on a worker thread.
//
// Why close-on-exec matters here (docs/helper-protocol.md): libuv on Linux closes nothing in a spawned
// child, so a received fd without FD_CLOEXEC is inherited by every backend Berth starts, and the port stays
// bound after Berth closes it (docker/for-mac#5649).
#ifndef BERTH_NATIVE_HELPER_CLIENT_H_
#define BERTH_NATIVE_HELPER_CLIENT_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <string>

#include "protocol.h"
#include "unique_fd.h"

namespace berth {

// How received fds get close-on-exec. kCmsgCloexec is atomic (Linux); kFcntl is what macOS must do and
// leaves a window between recvmsg and fcntl in which a concurrent fork+exec on another thread inherits the
// fd. macOS has no MSG_CMSG_CLOEXEC, so that window cannot be closed there. Tests select kFcntl on Linux to
// exercise the macOS code path.
enum class ReceivePath { kCmsgCloexec, kFcntl };

// One request to the helper at `socket_path`.
struct HelperRequest {
  std::string socket_path;
  protocol::Request request;
  int64_t timeout_ms = 5000;
  ReceivePath receive = ReceivePath::kCmsgCloexec;
  // Only ever true in the berth_native_test build (helper_napi.cc): the negative close-on-exec test.
  bool leave_cloexec_off = false;
};

// A failure as JavaScript will see it: Node-style code/errno/syscall plus where it happened.
struct HelperFailure {
  std::string code;         // "EHELPER..." for protocol-level problems; empty: the errno's own name
  int error = 0;            // the errno (positive); 0 when there is none
  std::string syscall;      // "connect", "recvmsg", ... ; empty when not a system call
  const char* stage = "";   // connect | send | receive | reply | verify | helper
  const char* status = "";  // for stage "helper": denied | bad-request | failed
  std::string message;
};

struct HelperOutcome {
  bool ok = false;
  HelperFailure failure;
  UniqueFd fd;  // a bind's socket, verified and close-on-exec
  uint32_t version = 0;
  std::string helper_message;
};

// Connects, sends the request, reads the reply and verifies the fd. Blocks (up to the timeout): run it off
// the main thread. Every fd received is closed unless it is the one returned in `fd`.
HelperOutcome AskHelper(const HelperRequest& request);

// ---- pure parts, fuzzed ----

// Calls `take(fd)` for every fd of every SCM_RIGHTS message in `control` (`size` bytes, as msg_controllen
// says). The walk is bounded by `size`, not by cmsg_len alone: after truncation macOS leaves cmsg_len at
// the untruncated length (rustix#1683), and trusting it would read past the buffer.
template <typename Take>
void ForEachPassedFd(const void* control, size_t size, Take take) {
  const char* cursor = static_cast<const char*>(control);
  size_t left = size;
  const size_t header = CMSG_LEN(0);
  while (cursor != nullptr && left >= header) {
    cmsghdr cmsg;
    memcpy(&cmsg, cursor, sizeof(cmsg));
    size_t len = cmsg.cmsg_len;
    if (len < header) break;
    if (len > left) len = left;
    if (cmsg.cmsg_level == SOL_SOCKET && cmsg.cmsg_type == SCM_RIGHTS) {
      size_t count = (len - header) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, cursor + header + i * sizeof(int), sizeof(int));
        take(fd);
      }
    }
    size_t step = CMSG_SPACE(len - header);
    if (step >= left) break;
    cursor += step;
    left -= step;
  }
}

// What a reply of `size` bytes in `frame`, which came with `fds` fds, answers to a request for `op`: true
// when it is a success that carries exactly what `op` expects (no fd for a ping, one for a bind, which the
// caller then verifies), with the reply in *reply. Otherwise false and *failure says why.
bool JudgeReply(uint8_t op, const uint8_t* frame, size_t size, size_t fds, protocol::Reply* reply,
                HelperFailure* failure);

}  // namespace berth

#endif  // BERTH_NATIVE_HELPER_CLIENT_H_
