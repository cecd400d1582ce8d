// The berth-helper client (helper_client.h): one request per connection, the reply's fd received
// close-on-exec and verified before anyone may use it.
#include "helper_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace berth {

namespace {

namespace p = protocol;

// Control buffer for up to 64 fds: a hostile or broken peer that sends many fds must not make the kernel
// (macOS installs every fd before truncating) hand us fds we cannot see to close.
constexpr int kMaxFds = 64;

HelperFailure SysFailure(const char* stage, const char* syscall, int error, const std::string& what) {
  HelperFailure f;
  f.error = error;
  f.syscall = syscall;
  f.stage = stage;
  f.message = what + ": " + strerror(error);
  return f;
}

HelperFailure ProtocolFailure(const char* code, const char* stage, const std::string& message) {
  HelperFailure f;
  f.code = code;
  f.stage = stage;
  f.message = message;
  return f;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits for `events` until the deadline. Returns 0, or an errno (ETIMEDOUT when the deadline passed).
int WaitFor(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - NowMs();
    if (left <= 0) return ETIMEDOUT;
    pollfd pfd = {fd, events, 0};
    int ready = poll(&pfd, 1, static_cast<int>(left));
    if (ready > 0) return 0;
    if (ready == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

// Reads the whole reply frame (ancillary data may ride with any byte of it on a stream socket), taking
// every fd that arrives into `fds` (owned from then on, so closed on any later error). Returns the number of
// reply bytes read, or -1 with `failure` set.
ssize_t ReceiveReply(int sock, const HelperRequest& request, int64_t deadline, uint8_t* frame,
                     std::vector<UniqueFd>* fds, HelperFailure* failure) {
  size_t got = 0;
  while (got < p::kReplySize) {
    int waited = WaitFor(sock, POLLIN, deadline);
    if (waited != 0) {
      *failure = SysFailure("receive", "poll", waited, "waiting for berth-helper's reply");
      return -1;
    }
    iovec iov = {frame + got, p::kReplySize - got};
    alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))];
    msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    int flags = 0;
#ifdef MSG_CMSG_CLOEXEC
    // The kernel installs the fds with close-on-exec set: there is no instant at which a fork in another
    // thread could inherit them.
    if (request.receive == ReceivePath::kCmsgCloexec && !request.leave_cloexec_off) {
      flags |= MSG_CMSG_CLOEXEC;
    }
#endif
    ssize_t n = recvmsg(sock, &msg, flags);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      *failure = SysFailure("receive", "recvmsg", errno, "reading berth-helper's reply");
      return -1;
    }
    size_t first_new = fds->size();
    ForEachPassedFd(msg.msg_control, msg.msg_controllen, [fds](int fd) { fds->emplace_back(fd); });
    if (request.receive == ReceivePath::kFcntl && !request.leave_cloexec_off) {
      // The macOS path: set close-on-exec on every received fd before doing anything else with them. A
      // fork+exec on another thread between recvmsg and here would still inherit them; that race is the
      // reason Linux uses MSG_CMSG_CLOEXEC instead.
      for (size_t i = first_new; i < fds->size(); ++i) {
        if (fcntl((*fds)[i].get(), F_SETFD, FD_CLOEXEC) != 0) {
          *failure = SysFailure("receive", "fcntl", errno, "setting close-on-exec on the received fd");
          return -1;
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      // At the fd limit Linux delivers the data but drops the fds and sets MSG_CTRUNC (rr#3870); with more
      // fds than the buffer holds, some were dropped too. Either way the reply cannot be trusted.
      *failure = ProtocolFailure("EHELPERBADREPLY", "receive",
                                 "berth-helper's reply lost its control data (MSG_CTRUNC): too many "
                                 "fds sent, or this process is at its open-file limit");
      return -1;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

bool SameAddress(const sockaddr_storage& addr, const p::Request& request) {
  if (request.family == p::kFamilyIpv4) {
    if (addr.ss_family != AF_INET) return false;
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    return ntohs(in->sin_port) == request.port && memcmp(&in->sin_addr, request.address, 4) == 0;
  }
  if (addr.ss_family != AF_INET6) return false;
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
  return ntohs(in6->sin6_port) == request.port && memcmp(&in6->sin6_addr, request.address, 16) == 0;
}

// Checks the received fd is exactly what was asked for, so a confused or hostile peer cannot make Berth
// adopt some other socket (or a file) as its listener.
bool Verify(int fd, const HelperRequest& params, HelperFailure* failure) {
  const p::Request& request = params.request;
  auto bad = [&](const std::string& why) {
    *failure = ProtocolFailure("EHELPERBADREPLY", "verify", "the fd berth-helper sent " + why);
    return false;
  };
  struct stat st;
  if (fstat(fd, &st) != 0) return bad("cannot be examined: " + std::string(strerror(errno)));
  if (!S_ISSOCK(st.st_mode)) return bad("is not a socket");
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return bad("has no socket type");
  int want = request.protocol == p::kProtocolTcp ? SOCK_STREAM : SOCK_DGRAM;
  if (type != want) {
    return bad(std::string("is a ") + (type == SOCK_STREAM ? "stream" : "non-stream") + " socket, not the " +
               (want == SOCK_STREAM ? "TCP" : "UDP") + " socket requested");
  }
  sockaddr_storage addr;
  memset(&addr, 0, sizeof(addr));
  socklen_t addr_len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0 || !SameAddress(addr, request)) {
    return bad("is not bound to the requested address and port");
  }
  if (request.protocol == p::kProtocolTcp) {
    int listening = 0;
    len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
      return bad("is not listening");
    }
  }
  int fd_flags = fcntl(fd, F_GETFD);
  if (!params.leave_cloexec_off && (fd_flags < 0 || !(fd_flags & FD_CLOEXEC))) {
    return bad("did not get close-on-exec");
  }
  return true;
}

// A connected, close-on-exec Unix socket to the helper, or an invalid one with `failure` set.
UniqueFd Connect(const HelperRequest& request, int64_t deadline, HelperFailure* failure) {
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, request.socket_path.data(), request.socket_path.size());

#if defined(__linux__)
  // Close-on-exec from creation: a backend spawned meanwhile must not inherit the connection, in whose
  // receive queue a late reply (and its bound fd) could still arrive after a timeout.
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) {
#else
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM, 0));
  if (!sock.valid() || fcntl(sock.get(), F_SETFD, FD_CLOEXEC) != 0 ||
      fcntl(sock.get(), F_SETFL, O_NONBLOCK) != 0) {
#endif
    *failure = SysFailure("connect", "socket", errno, "creating a Unix socket");
    return UniqueFd();
  }
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(sock.get(), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
  for (;;) {
    if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return sock;
    if (errno == EINTR) continue;
    if (errno == EINPROGRESS) {
      int waited = WaitFor(sock.get(), POLLOUT, deadline);
      int error = waited;
      socklen_t len = sizeof(error);
      if (waited == 0) getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &error, &len);
      if (error == 0) return sock;
      *failure = SysFailure("connect", "connect", error, "connecting to " + request.socket_path);
      return UniqueFd();
    }
    if (errno == EAGAIN && NowMs() < deadline) {
      // Linux: the helper's backlog is full. It drains quickly; try again shortly.
      usleep(10000);
      continue;
    }
    break;
  }
  *failure = SysFailure("connect", "connect", errno, "connecting to " + request.socket_path);
  return UniqueFd();
}

}  // namespace

bool JudgeReply(uint8_t op, const uint8_t* frame, size_t size, size_t fds, p::Reply* reply,
                HelperFailure* failure) {
  if (!p::ParseReply(frame, size, reply) || (reply->op != 0 && reply->op != op)) {
    *failure = ProtocolFailure(
        "EHELPERBADREPLY", "reply",
        size == 0 ? std::string("berth-helper closed the connection without replying")
                  : "the reply is not a berth-helper protocol 1 frame (" + std::to_string(size) + " bytes)");
    return false;
  }
  if (reply->status != p::kStatusOk) {
    HelperFailure& f = *failure;
    f = HelperFailure();
    f.stage = "helper";
    // The reason is the helper's sentence; one that sends none still gets a message a user can read.
    f.message = *reply->message != '\0' ? reply->message : "berth-helper gave no reason";
    f.error = reply->error;
    if (reply->status == p::kStatusDenied) {
      f.status = "denied";
      f.code = "EHELPERDENIED";
    } else if (reply->status == p::kStatusBadRequest) {
      f.status = "bad-request";
      f.code = "EHELPERPROTOCOL";
    } else {
      f.status = "failed";
      if (reply->error <= 0) f.code = "EHELPERFAILED";  // else the errno's own name
      f.syscall = reply->syscall;
    }
    return false;
  }
  if (op == p::kOpPing) {
    if (fds == 0) return true;
    *failure = ProtocolFailure("EHELPERBADREPLY", "reply",
                               "berth-helper sent an fd with its ping reply; all were closed");
    return false;
  }
  if (fds == 1) return true;
  *failure = ProtocolFailure("EHELPERBADREPLY", "reply",
                             fds == 0 ? std::string("berth-helper replied OK but sent no socket")
                                      : "berth-helper sent " + std::to_string(fds) +
                                            " fds where exactly one was expected; all were closed");
  return false;
}

HelperOutcome AskHelper(const HelperRequest& request) {
  HelperOutcome out;
  const int64_t deadline = NowMs() + request.timeout_ms;
  UniqueFd sock = Connect(request, deadline, &out.failure);
  if (!sock.valid()) return out;

  uint8_t frame[p::kRequestSize];
  p::EncodeRequest(request.request, frame);
  size_t sent = 0;
  while (sent < sizeof(frame)) {
#ifdef MSG_NOSIGNAL
    ssize_t n = send(sock.get(), frame + sent, sizeof(frame) - sent, MSG_NOSIGNAL);
#else
    ssize_t n = send(sock.get(), frame + sent, sizeof(frame) - sent, 0);
#endif
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    int waited = errno == EAGAIN ? WaitFor(sock.get(), POLLOUT, deadline) : errno;
    if (waited != 0) {
      out.failure = SysFailure("send", "send", waited, "sending the request to berth-helper");
      return out;
    }
  }
  // The request ends at our EOF: that is how the helper tells a complete frame from a truncated one.
  shutdown(sock.get(), SHUT_WR);

  uint8_t reply_frame[p::kReplySize];
  std::vector<UniqueFd> fds;
  ssize_t got = ReceiveReply(sock.get(), request, deadline, reply_frame, &fds, &out.failure);
  if (got < 0) return out;  // `fds` closes everything received
  p::Reply reply;
  if (!JudgeReply(request.request.op, reply_frame, static_cast<size_t>(got), fds.size(), &reply,
                  &out.failure)) {
    return out;  // `fds` closes everything received
  }
  out.version = reply.version;
  out.helper_message = reply.message;
  if (request.request.op == p::kOpBind) {
    if (!Verify(fds[0].get(), request, &out.failure)) return out;
    out.fd = std::move(fds[0]);
  }
  out.ok = true;
  return out;
}

}  // namespace berth
