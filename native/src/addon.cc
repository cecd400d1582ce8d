// berth_native: asks berth-helper for a bound socket and receives it close-on-exec from the first instant.
//
// Why close-on-exec matters (../shared/DESIGN.md, "Acquiring a listener"): libuv on Linux closes nothing in
// a spawned child, so a received fd without FD_CLOEXEC is inherited by every backend Berth starts, and the
// port stays bound after Berth closes it (docker/for-mac#5649).
//
// Exports (argument checking is done in TypeScript first, app/helper/helper-binder.ts; these re-check
// and throw TypeError rather than crash):
//   request(socketPath, op, protocol, address, port, timeoutMs, receivePath) -> Promise<number | object>
//   receivePaths -> { native, available[] }
//   testLeaveCloexecOff(on)  (only in the berth_native_test build, see below)
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
#include <uv.h>

#include <atomic>
#include <string>
#include <vector>

#include "napi.h"
#include "protocol.h"
#include "tcp_relay.h"
#include "udp_relay.h"
#include "unique_fd.h"

namespace berth {
namespace {

namespace p = protocol;

// How received fds get close-on-exec. kCmsgCloexec is atomic (Linux); kFcntl is what macOS must do and
// leaves a window between recvmsg and fcntl in which a concurrent fork+exec on another thread inherits the
// fd. macOS has no MSG_CMSG_CLOEXEC, so that window cannot be closed there. Tests select kFcntl on Linux to
// exercise the macOS code path.
enum class ReceivePath { kCmsgCloexec, kFcntl };

#ifdef BERTH_NATIVE_TEST_HOOKS
// The negative regression test needs an fd WITHOUT close-on-exec, to prove the leak test can fail. This
// switch exists only in the separate berth_native_test.node (built with BERTH_NATIVE_TEST_HOOKS); the
// berth_native.node that Berth loads is compiled without it, so no env var, config key or stray call can
// turn it on in production: the code is simply not there.
std::atomic<bool> g_leave_cloexec_off{false};
#endif

bool LeaveCloexecOff() {
#ifdef BERTH_NATIVE_TEST_HOOKS
  return g_leave_cloexec_off.load();
#else
  return false;
#endif
}

// Control buffer for up to 64 fds: a hostile or broken peer that sends many fds must not make the kernel
// (macOS installs every fd before truncating) hand us fds we cannot see to close.
constexpr int kMaxFds = 64;

struct Params {
  std::string socket_path;
  p::Request request;
  int64_t timeout_ms = 5000;
  ReceivePath receive = ReceivePath::kCmsgCloexec;
  bool leave_cloexec_off = false;
};

// A failure as JavaScript will see it: Node-style code/errno/syscall plus where it happened.
struct Failure {
  std::string code;     // "ENOENT", "ETIMEDOUT", or "EHELPER..." for protocol-level problems
  int error = 0;        // the errno (positive); 0 when there is none
  std::string syscall;  // "connect", "recvmsg", ... ; empty when not a system call
  std::string stage;    // connect | send | receive | reply | verify | helper
  std::string status;   // for stage "helper": denied | bad-request | failed
  std::string message;
};

struct Outcome {
  bool ok = false;
  Failure failure;
  UniqueFd fd;
  uint32_t version = 0;
  std::string helper_message;
};

std::string ErrnoCode(int error) { return uv_err_name(-error); }

Failure SysFailure(const char* stage, const char* syscall, int error, const std::string& what) {
  Failure f;
  f.code = ErrnoCode(error);
  f.error = error;
  f.syscall = syscall;
  f.stage = stage;
  f.message = what + ": " + strerror(error);
  return f;
}

Failure ProtocolFailure(const char* code, const char* stage, const std::string& message) {
  Failure f;
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

// Takes every fd out of every SCM_RIGHTS message into `fds` (owned from here on, so closed on any later
// error). The walk is bounded by msg_controllen, not by cmsg_len alone: after truncation macOS leaves
// cmsg_len at the untruncated length (rustix#1683), and trusting it would read past the buffer.
void TakeFds(const msghdr& msg, std::vector<UniqueFd>* fds) {
  auto* cursor = static_cast<char*>(msg.msg_control);
  size_t left = msg.msg_controllen;
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
        fds->emplace_back(fd);
      }
    }
    size_t step = CMSG_SPACE(len - header);
    if (step >= left) break;
    cursor += step;
    left -= step;
  }
}

// Reads the whole reply frame (ancillary data may ride with any byte of it on a stream socket), taking
// every fd that arrives. Returns the number of reply bytes read, or -1 with `failure` set.
ssize_t ReceiveReply(int sock, const Params& params, int64_t deadline, uint8_t* frame,
                     std::vector<UniqueFd>* fds, Failure* failure) {
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
    if (params.receive == ReceivePath::kCmsgCloexec && !params.leave_cloexec_off) {
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
    TakeFds(msg, fds);
    if (params.receive == ReceivePath::kFcntl && !params.leave_cloexec_off) {
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
bool Verify(int fd, const Params& params, Failure* failure) {
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

Outcome Run(const Params& params) {
  Outcome out;
  const int64_t deadline = NowMs() + params.timeout_ms;
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, params.socket_path.data(), params.socket_path.size());

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
    out.failure = SysFailure("connect", "socket", errno, "creating a Unix socket");
    return out;
  }
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(sock.get(), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
  for (;;) {
    if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EINPROGRESS) {
      int waited = WaitFor(sock.get(), POLLOUT, deadline);
      int error = waited;
      socklen_t len = sizeof(error);
      if (waited == 0) getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &error, &len);
      if (error != 0) {
        out.failure = SysFailure("connect", "connect", error, "connecting to " + params.socket_path);
        return out;
      }
      break;
    }
    if (errno == EAGAIN && NowMs() < deadline) {
      // Linux: the helper's backlog is full. It drains quickly; try again shortly.
      usleep(10000);
      continue;
    }
    out.failure = SysFailure("connect", "connect", errno, "connecting to " + params.socket_path);
    return out;
  }

  uint8_t request[p::kRequestSize];
  p::EncodeRequest(params.request, request);
  size_t sent = 0;
  while (sent < sizeof(request)) {
#ifdef MSG_NOSIGNAL
    ssize_t n = send(sock.get(), request + sent, sizeof(request) - sent, MSG_NOSIGNAL);
#else
    ssize_t n = send(sock.get(), request + sent, sizeof(request) - sent, 0);
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

  uint8_t frame[p::kReplySize];
  std::vector<UniqueFd> fds;
  ssize_t got = ReceiveReply(sock.get(), params, deadline, frame, &fds, &out.failure);
  if (got < 0) return out;  // `fds` closes everything received
  p::Reply reply;
  if (!p::ParseReply(frame, static_cast<size_t>(got), &reply) ||
      (reply.op != 0 && reply.op != params.request.op)) {
    out.failure = ProtocolFailure(
        "EHELPERBADREPLY", "reply",
        got == 0 ? std::string("berth-helper closed the connection without replying")
                 : "the reply is not a berth-helper protocol 1 frame (" + std::to_string(got) + " bytes)");
    return out;
  }
  out.version = reply.version;
  out.helper_message = reply.message;
  if (reply.status != p::kStatusOk) {
    Failure& f = out.failure;
    f.stage = "helper";
    f.message = reply.message;
    f.error = reply.error;
    if (reply.status == p::kStatusDenied) {
      f.status = "denied";
      f.code = "EHELPERDENIED";
    } else if (reply.status == p::kStatusBadRequest) {
      f.status = "bad-request";
      f.code = "EHELPERPROTOCOL";
    } else {
      f.status = "failed";
      f.code = reply.error > 0 ? ErrnoCode(reply.error) : "EHELPERFAILED";
      f.syscall = reply.syscall;
    }
    return out;
  }
  if (params.request.op == p::kOpPing) {
    if (!fds.empty()) {
      out.failure = ProtocolFailure("EHELPERBADREPLY", "reply",
                                    "berth-helper sent an fd with its ping reply; all were closed");
      return out;
    }
    out.ok = true;
    return out;
  }
  if (fds.size() != 1) {
    out.failure = ProtocolFailure("EHELPERBADREPLY", "reply",
                                  fds.empty() ? std::string("berth-helper replied OK but sent no socket")
                                              : "berth-helper sent " + std::to_string(fds.size()) +
                                                    " fds where exactly one was expected; all were closed");
    return out;
  }
  if (!Verify(fds[0].get(), params, &out.failure)) return out;
  out.fd = std::move(fds[0]);
  out.ok = true;
  return out;
}

class RequestWorker : public Napi::AsyncWorker {
 public:
  RequestWorker(Napi::Env env, Params params)
      : Napi::AsyncWorker(env, "berth:helper-request"),
        params_(std::move(params)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // Runs on the thread pool: plain C++ only, no N-API calls.
  void Execute() override { outcome_ = Run(params_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!outcome_.ok) {
      deferred_.Reject(MakeError(env, outcome_.failure));
      return;
    }
    if (params_.request.op == p::kOpPing) {
      Napi::Object result = Napi::Object::New(env);
      result.Set("version", Napi::Number::New(env, outcome_.version));
      result.Set("message", Napi::String::New(env, outcome_.helper_message));
      deferred_.Resolve(result);
      return;
    }
    // From here JavaScript owns the fd (the engine adopts it, or closes it if adoption fails). If the
    // environment is torn down before OnOK runs, `outcome_.fd` closes it in the worker's destructor.
    // The number is made first: if making it throws, the fd is still owned here and closed.
    Napi::Number fd = Napi::Number::New(env, outcome_.fd.get());
    deferred_.Resolve(fd);
    outcome_.fd.release();
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  static Napi::Value MakeError(Napi::Env env, const Failure& f) {
    Napi::Error error = Napi::Error::New(env, f.message);
    Napi::Object obj = error.Value();
    obj.Set("code", Napi::String::New(env, f.code));
    // Node reports errno negated (libuv style), e.g. -98 for EADDRINUSE.
    if (f.error != 0) obj.Set("errno", Napi::Number::New(env, -f.error));
    if (!f.syscall.empty()) obj.Set("syscall", Napi::String::New(env, f.syscall));
    obj.Set("stage", Napi::String::New(env, f.stage));
    if (!f.status.empty()) obj.Set("helperStatus", Napi::String::New(env, f.status));
    return obj;
  }

  Params params_;
  Outcome outcome_;
  Napi::Promise::Deferred deferred_;
};

[[noreturn]] void ThrowType(Napi::Env env, const char* message) { throw Napi::TypeError::New(env, message); }

// request(socketPath, op, protocol, address, port, timeoutMs, receivePath)
Napi::Value Request(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) ThrowType(env, "request() takes 7 arguments");
  if (!info[0].IsString()) ThrowType(env, "socketPath must be a string");
  if (!info[1].IsString()) ThrowType(env, "op must be 'ping' or 'bind'");
  if (!info[2].IsString()) ThrowType(env, "protocol must be 'tcp' or 'udp'");
  if (!info[3].IsString()) ThrowType(env, "address must be a string");
  if (!info[4].IsNumber() || !info[5].IsNumber()) ThrowType(env, "port and timeoutMs are numbers");
  if (!info[6].IsString()) ThrowType(env, "receivePath must be a string");
  Params params;
  params.socket_path = info[0].As<Napi::String>().Utf8Value();
  if (params.socket_path.empty() || params.socket_path.size() >= sizeof(sockaddr_un::sun_path) ||
      params.socket_path.find('\0') != std::string::npos) {
    ThrowType(env, "socketPath must be a non-empty path that fits a Unix socket address");
  }
  std::string op = info[1].As<Napi::String>().Utf8Value();
  std::string protocol = info[2].As<Napi::String>().Utf8Value();
  std::string address = info[3].As<Napi::String>().Utf8Value();
  double port = info[4].As<Napi::Number>().DoubleValue();
  double timeout = info[5].As<Napi::Number>().DoubleValue();
  std::string receive = info[6].As<Napi::String>().Utf8Value();
  if (!(timeout >= 1 && timeout <= 600000)) ThrowType(env, "timeoutMs must be 1-600000");
  params.timeout_ms = static_cast<int64_t>(timeout);
  if (receive == "msg-cmsg-cloexec") {
#ifndef MSG_CMSG_CLOEXEC
    ThrowType(env, "receivePath 'msg-cmsg-cloexec' needs MSG_CMSG_CLOEXEC, which this OS lacks");
#endif
    params.receive = ReceivePath::kCmsgCloexec;
  } else if (receive == "fcntl") {
    params.receive = ReceivePath::kFcntl;
  } else {
    ThrowType(env, "receivePath must be 'msg-cmsg-cloexec' or 'fcntl'");
  }
  params.leave_cloexec_off = LeaveCloexecOff();
  if (op == "ping") {
    params.request.op = p::kOpPing;
  } else if (op == "bind") {
    params.request.op = p::kOpBind;
    if (protocol == "tcp") {
      params.request.protocol = p::kProtocolTcp;
    } else if (protocol == "udp") {
      params.request.protocol = p::kProtocolUdp;
    } else {
      ThrowType(env, "protocol must be 'tcp' or 'udp'");
    }
    if (inet_pton(AF_INET, address.c_str(), params.request.address) == 1) {
      params.request.family = p::kFamilyIpv4;
    } else if (inet_pton(AF_INET6, address.c_str(), params.request.address) == 1) {
      params.request.family = p::kFamilyIpv6;
    } else {
      ThrowType(env, "address must be an IPv4 or IPv6 literal");
    }
    if (!(port >= 1 && port <= 65535 && port == static_cast<double>(static_cast<int>(port)))) {
      ThrowType(env, "port must be an integer 1-65535");
    }
    params.request.port = static_cast<uint16_t>(port);
  } else {
    ThrowType(env, "op must be 'ping' or 'bind'");
  }
  auto* worker = new RequestWorker(env, std::move(params));
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

#ifdef BERTH_NATIVE_TEST_HOOKS
Napi::Value TestLeaveCloexecOff(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsBoolean()) ThrowType(info.Env(), "expects one boolean");
  g_leave_cloexec_off.store(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("request", Napi::Function::New(env, Request, "request"));
  Napi::Object paths = Napi::Object::New(env);
  Napi::Array available = Napi::Array::New(env);
#ifdef MSG_CMSG_CLOEXEC
  paths.Set("native", "msg-cmsg-cloexec");
  available.Set(0u, "msg-cmsg-cloexec");
  available.Set(1u, "fcntl");
#else
  paths.Set("native", "fcntl");
  available.Set(0u, "fcntl");
#endif
  paths.Set("available", available);
  exports.Set("receivePaths", paths);
  exports.Set("protocolVersion", Napi::Number::New(env, p::kVersion));
#ifdef BERTH_NATIVE_TEST_HOOKS
  exports.Set("testLeaveCloexecOff", Napi::Function::New(env, TestLeaveCloexecOff));
#endif
  InitUdpRelay(env, exports);  // udp_relay.cc: the native UDP data plane (Linux)
  InitTcpRelay(env, exports);  // tcp_relay.cc: the native TCP data plane (Linux)
  return exports;
}

}  // namespace
}  // namespace berth

// The macro pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitBerthNative(Napi::Env env, Napi::Object exports) { return berth::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitBerthNative)
