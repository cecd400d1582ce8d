// What the native relays (udp_relay.cc, tcp_relay.cc) share, so both throw the same errors for the same
// mistakes: Node-style errors, argument checks, IP literals, the checks on a listener fd handed in from
// JavaScript, their libuv handles, the error counters of stats(), and the cleanup hook that closes a relay
// its environment outlives. Linux only, like the relays themselves.
#ifndef BERTH_NATIVE_RELAY_UTIL_H_
#define BERTH_NATIVE_RELAY_UTIL_H_

#ifdef __linux__
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <uv.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "napi.h"

namespace berth {

// The errno's name as Node reports it ("ECONNREFUSED").
inline std::string ErrnoCode(int error) {
  char name[64];
  uv_err_name_r(-error, name, sizeof(name));
  return name;
}

// A Node-style error: code, errno (negative, as Node reports it) and syscall.
inline Napi::Error SysError(Napi::Env env, int error, const char* syscall, const std::string& message) {
  std::string code = ErrnoCode(error);
  Napi::Error e =
      Napi::Error::New(env, std::string(syscall) + " " + code + " " + message + " (" + strerror(error) + ")");
  Napi::Object obj = e.Value();
  obj.Set("code", Napi::String::New(env, code));
  obj.Set("errno", Napi::Number::New(env, -error));
  obj.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

// True (and the value in *out) when `value` is an integral number in [lo, hi].
inline bool IsInteger(const Napi::Value& value, double lo, double hi, double* out) {
  if (!value.IsNumber()) return false;
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::floor(d)) return false;
  *out = d;
  return true;
}

// A file descriptor argument; `name` is the argument's name in the TypeError.
inline int FdArgument(const Napi::CallbackInfo& info, size_t index, const char* name) {
  double fd;
  if (!IsInteger(info[index], 0, 2147483647, &fd)) {
    ThrowType(info.Env(), std::string(name) + " must be an integer 0-2147483647");
  }
  return static_cast<int>(fd);
}

// The address argument of bindUdp, bindTcp and UdpRelay; ParseAddress says whether it is a literal.
inline std::string AddressArgument(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsString()) ThrowType(info.Env(), "address must be a string (an IPv4 or IPv6 literal)");
  return info[index].As<Napi::String>().Utf8Value();
}

// The port argument next to it. `min_port` is 0 where port 0 means "any".
inline uint16_t PortArgument(const Napi::CallbackInfo& info, size_t index, double min_port) {
  double port;
  if (!IsInteger(info[index], min_port, 65535, &port)) {
    ThrowType(info.Env(), "port must be an integer " + std::to_string(static_cast<int>(min_port)) + "-65535");
  }
  return static_cast<uint16_t>(port);
}

// An IPv4 or IPv6 literal (the latter optionally with %scope: an interface index or name) and a port, as a
// socket address; 0 if it is not one. *unknown_scope (when given) is set when the literal is a valid IPv6
// address whose scope names no network interface, so a caller can say so rather than "not a literal".
inline socklen_t ParseAddress(const std::string& address, uint16_t port, sockaddr_storage* out,
                              bool* unknown_scope = nullptr) {
  if (unknown_scope != nullptr) *unknown_scope = false;
  memset(out, 0, sizeof(*out));
  if (address.find('\0') != std::string::npos) return 0;
  auto* in = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  size_t percent = address.find('%');
  std::string host = address.substr(0, percent);
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) return 0;
  uint32_t scope_id = 0;
  if (percent != std::string::npos) {
    std::string scope = address.substr(percent + 1);
    if (!scope.empty() && scope.size() <= 10 && scope.find_first_not_of("0123456789") == std::string::npos &&
        std::stoull(scope) <= 0xffffffffull) {
      scope_id = static_cast<uint32_t>(std::stoull(scope));
    } else {
      scope_id = scope.empty() ? 0 : if_nametoindex(scope.c_str());
    }
    if (scope_id == 0) {
      if (unknown_scope != nullptr) *unknown_scope = true;
      return 0;
    }
  }
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  in6->sin6_scope_id = scope_id;
  return sizeof(sockaddr_in6);
}

// "192.0.2.1:80" or "[2001:db8::1]:80", for error messages.
inline std::string Describe(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
  inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
}

// The uv_close callback of a handle allocated with new.
template <typename Handle>
void FreeHandle(uv_handle_t* handle) {
  delete reinterpret_cast<Handle*>(handle);
}

// A uv_poll_t reading `fd` with `callback`, its data `data`. SysError naming `what` when libuv refuses
// (UV_EEXIST: this loop already polls the fd); the caller then still owns the fd. Freed with uv_close and
// FreeHandle<uv_poll_t>.
inline uv_poll_t* StartPoll(Napi::Env env, uv_loop_t* loop, int fd, uv_poll_cb callback, void* data,
                            const std::string& what) {
  std::unique_ptr<uv_poll_t> poll(new uv_poll_t());
  int r = uv_poll_init(loop, poll.get(), fd);
  if (r != 0) throw SysError(env, -r, "uv_poll_init", what);
  poll->data = data;
  r = uv_poll_start(poll.get(), UV_READABLE, callback);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll.release()), FreeHandle<uv_poll_t>);
    throw SysError(env, -r, "uv_poll_start", what);
  }
  return poll.release();
}

// A relay's timer, not started, its data `data`. Unreferenced: an idle relay must not keep Node's loop alive
// (its listener's poll does, while there is one). Freed with uv_close and FreeHandle<uv_timer_t>.
inline uv_timer_t* NewTimer(uv_loop_t* loop, void* data) {
  auto* timer = new uv_timer_t();
  uv_timer_init(loop, timer);
  timer->data = data;
  uv_unref(reinterpret_cast<uv_handle_t*>(timer));
  return timer;
}

// A listener fd handed in from JavaScript must be a socket of `type` ("datagram" / "stream" in `type_name`):
// anything else would fail later, in the loop, where no caller hears of it. `what` names the fd in errors.
inline void CheckSocketType(Napi::Env env, int fd, int type, const char* type_name, const std::string& what) {
  struct stat st;
  if (fstat(fd, &st) != 0) throw SysError(env, errno, "fstat", what);
  if (!S_ISSOCK(st.st_mode)) throw SysError(env, ENOTSOCK, "fstat", what + " is not a socket");
  int actual = 0;
  socklen_t actual_len = sizeof(actual);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &actual, &actual_len) != 0)
    throw SysError(env, errno, "getsockopt", what);
  if (actual != type) {
    throw SysError(env, EPROTOTYPE, "getsockopt", what + " is not a " + type_name + " socket");
  }
}

// The relays only ever read and write without blocking, whatever mode the fd came in.
inline void SetNonBlocking(Napi::Env env, int fd, const std::string& what) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw SysError(env, errno, "fcntl", what);
}

// The errors a relay counts in the loop, where there is no caller to throw to: stats().errors and
// stats().lastError.
class ErrorLog {
 public:
  void Record(const std::string& code, int error, const char* syscall) {
    count_ += 1;
    has_last_ = true;
    code_ = code;
    error_ = error;
    syscall_ = syscall;
  }

  void RecordErrno(int error, const char* syscall) { Record(ErrnoCode(error), error, syscall); }

  uint64_t count() const { return count_; }

  // { code, errno, syscall } of the last error (errno negative as Node's, 0 for a relay's own code such as
  // EMAXCONN), or null when there was none.
  Napi::Value Last(Napi::Env env) const {
    if (!has_last_) return env.Null();
    Napi::Object last = Napi::Object::New(env);
    last.Set("code", Napi::String::New(env, code_));
    last.Set("errno", Napi::Number::New(env, error_ == 0 ? 0 : -error_));
    last.Set("syscall", Napi::String::New(env, syscall_));
    return last;
  }

 private:
  uint64_t count_ = 0;
  bool has_last_ = false;
  std::string code_;
  int error_ = 0;  // positive errno, 0 when there is none
  std::string syscall_;
};

// Closes a relay still open when its environment goes away (a worker exits), so no handle outlives its loop.
// `Relay` has a Close() that is idempotent and calls Remove(); the hook lives inside the relay, so its
// address is stable.
template <typename Relay>
class CleanupHook {
 public:
  // Hooks run in reverse order of registration, so this one before N-API's finalizers.
  void Add(napi_env env, Relay* relay) {
    env_ = env;
    relay_ = relay;
    hooked_ = napi_add_env_cleanup_hook(env_, Run, this) == napi_ok;
  }

  void Remove() {
    if (!hooked_) return;
    hooked_ = false;
    napi_remove_env_cleanup_hook(env_, Run, this);
  }

 private:
  static void Run(void* arg) {
    auto* self = static_cast<CleanupHook*>(arg);
    self->hooked_ = false;  // the hook is being run (and removed) by Node
    self->relay_->Close();
  }

  napi_env env_ = nullptr;
  Relay* relay_ = nullptr;
  bool hooked_ = false;
};

}  // namespace berth

#endif  // __linux__

#endif  // BERTH_NATIVE_RELAY_UTIL_H_
