// The UDP relay's N-API layer: argument checks, Node's loop handles, and the JavaScript shape of
// udp_relay.h's UdpRelay. Used by app/native/relays.ts, which checks every argument first; these checks
// throw TypeError rather than crash.
//
// Exports:
//   udpRelayAvailable -> boolean (false and nothing else off Linux)
//   bindUdp(address, port) -> fd
//   udpLocalPort(fd) -> port
//   new UdpRelay({ fd, target: { address, port }, idleTimeoutMs, maxSessions, maxSessionsPerSource? })
//     .stats() .setTarget(target) .close()
// There are no callbacks into JavaScript: the engine polls stats().
#include "addon.h"

#ifdef __linux__
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "listener.h"
#include "napi_util.h"
#include "relay_napi.h"
#include "socket_address.h"
#include "udp_relay.h"
#include "unique_fd.h"
#endif

namespace berth {

#ifndef __linux__

void InitUdpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("udpRelayAvailable", Napi::Boolean::New(env, false));
}

#else

namespace {

constexpr const char* kShape = "{ fd, target, idleTimeoutMs, maxSessions, maxSessionsPerSource? }";

// An IPv4 or IPv6 literal (the latter optionally with %scope) and a port, as a socket address. TypeError
// when either is bad; `label` names them. `min_port` is 0 where port 0 means "any".
socklen_t ParseLiteral(Napi::Env env, const Napi::Value& address_value, const Napi::Value& port_value,
                       double min_port, const std::string& label, sockaddr_storage* out) {
  if (!address_value.IsString()) ThrowType(env, label + "address must be a string (an IPv4 or IPv6 literal)");
  std::string address = address_value.As<Napi::String>().Utf8Value();
  double port;
  if (!IsInteger(port_value, min_port, 65535, &port)) {
    ThrowType(env,
              label + "port must be an integer " + std::to_string(static_cast<int>(min_port)) + "-65535");
  }
  bool unknown_scope;
  socklen_t len = ParseAddress(address, static_cast<uint16_t>(port), out, &unknown_scope);
  if (unknown_scope) ThrowType(env, label + "address '" + address + "' names no known network interface");
  if (len == 0) ThrowType(env, label + "address must be an IPv4 or IPv6 literal, got '" + address + "'");
  return len;
}

// { address, port }: where sessions connect.
UdpTarget TargetArgument(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) ThrowType(env, "target must be { address: string, port: number }");
  Napi::Object obj = value.As<Napi::Object>();
  UdpTarget target;
  target.len = ParseLiteral(env, obj.Get("address"), obj.Get("port"), 1, "target.", &target.addr);
  return target;
}

// bindUdp(address, port) -> fd: a non-blocking, close-on-exec UDP socket bound to address:port.
Napi::Value BindUdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) ThrowType(env, "bindUdp() takes 2 arguments: address, port");
  sockaddr_storage addr;
  socklen_t len = ParseLiteral(env, info[0], info[1], 0, "", &addr);
  UniqueFd sock;
  if (OsError e = BindListener(SOCK_DGRAM, addr, len, &sock)) throw SysError(env, e);
  Napi::Number fd = Napi::Number::New(env, sock.get());
  sock.release();  // JavaScript's now
  return fd;
}

// udpLocalPort(fd) -> the port the socket is bound to (0 when it is not bound).
Napi::Value UdpLocalPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) ThrowType(env, "udpLocalPort() takes 1 argument: fd");
  int fd = FdValue(env, info[0], "fd");
  sockaddr_storage addr;
  memset(&addr, 0, sizeof(addr));
  socklen_t len = sizeof(addr);
  const std::string what = "fd " + std::to_string(fd);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SysError(env, errno, "getsockname", what);
  }
  if (addr.ss_family == AF_INET) {
    return Napi::Number::New(env, ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    return Napi::Number::New(env, ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port));
  }
  throw SysError(env, EAFNOSUPPORT, "getsockname", what + " is not an IPv4 or IPv6 socket");
}

// The JavaScript object: owns the relay and its loop handles.
class UdpRelayObject : public Napi::ObjectWrap<UdpRelayObject>, public OpenRelay {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpRelay",
                       {InstanceMethod("stats", &UdpRelayObject::Stats),
                        InstanceMethod("setTarget", &UdpRelayObject::SetTarget),
                        InstanceMethod("close", &UdpRelayObject::CloseMethod)});
  }

  // The relay owns options.fd only if this returns: every throw leaves it open, for the caller to close.
  explicit UdpRelayObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpRelayObject>(info) {
    Napi::Env env = info.Env();
    Napi::Object options = OptionsArgument(info, "UdpRelay", kShape);
    const int fd = FdValue(env, options.Get("fd"), "options.fd");
    UdpTarget target = TargetArgument(env, options.Get("target"));
    UdpRelayOptions parsed;
    parsed.idle_timeout_ms =
        MillisecondsOption(env, options, "idleTimeoutMs", false, "options.idleTimeoutMs");
    parsed.max_sessions =
        static_cast<size_t>(IntegerOption(env, options, "maxSessions", 1, 2147483647, "options.maxSessions"));
    parsed.max_sessions_per_source =
        options.Get("maxSessionsPerSource").IsUndefined()
            ? DefaultSessionsPerSource(parsed.max_sessions)
            : static_cast<size_t>(IntegerOption(env, options, "maxSessionsPerSource", 1, 2147483647,
                                                "options.maxSessionsPerSource"));

    relay_.reset(new UdpRelay(target, parsed));
    const std::string what = "fd " + std::to_string(fd);
    if (OsError e = relay_->Open()) throw SysError(env, e);
    handles_.Start(env, relay_->poll_fd(), OnPoll, this, what);
    entry_.Join(env, this);
    if (OsError e = relay_->Adopt(fd)) {
      Close();
      throw SysError(env, e);
    }
    const uint64_t every = relay_->sweep_every_ms();
    handles_.StartTimer(OnSweep, every, every);
  }

  // Collected without close(): close now.
  ~UdpRelayObject() override { Close(); }

  void Close() override {
    if (relay_ == nullptr || relay_->closed()) return;
    handles_.Close();  // before the epoll fd closes
    relay_->Close();
    entry_.Leave();
  }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<UdpRelayObject*>(handle->data);
    if (status < 0) {
      // POLLERR on an epoll fd does not happen; should it, libuv stopped the handle: poll again.
      if (uv_poll_start(handle, UV_READABLE, OnPoll) != 0) return;
    }
    self->relay_->OnReadable(self->handles_.Now());
  }

  static void OnSweep(uv_timer_t* timer) {
    auto* self = static_cast<UdpRelayObject*>(timer->data);
    self->relay_->Sweep(self->handles_.Now());
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const UdpRelayStats stats = relay_->stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("toTarget", Napi::Number::New(env, static_cast<double>(stats.to_target)));
    out.Set("fromTarget", Napi::Number::New(env, static_cast<double>(stats.from_target)));
    out.Set("datagramsToTarget", Napi::Number::New(env, static_cast<double>(stats.datagrams_to_target)));
    out.Set("datagramsFromTarget", Napi::Number::New(env, static_cast<double>(stats.datagrams_from_target)));
    out.Set("active", Napi::Number::New(env, static_cast<double>(stats.active)));
    out.Set("total", Napi::Number::New(env, static_cast<double>(stats.total)));
    out.Set("errors", Napi::Number::New(env, static_cast<double>(relay_->errors().count())));
    out.Set("dropped", Napi::Number::New(env, static_cast<double>(stats.dropped)));
    out.Set("evicted", Napi::Number::New(env, static_cast<double>(stats.evicted)));
    out.Set("lastError", LastError(env, relay_->errors()));
    return out;
  }

  // setTarget(target): sessions opened from now on connect there; open ones keep their target.
  Napi::Value SetTarget(const Napi::CallbackInfo& info) {
    if (info.Length() != 1) ThrowType(info.Env(), "setTarget() takes 1 argument: target");
    relay_->SetTarget(TargetArgument(info.Env(), info[0]));
    return info.Env().Undefined();
  }

  Napi::Value CloseMethod(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  // Declared first, destroyed last: the handles and the entry go before the relay.
  std::unique_ptr<UdpRelay> relay_;
  LoopHandles handles_;
  RelayEntry entry_;
};

}  // namespace

void InitUdpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("udpRelayAvailable", Napi::Boolean::New(env, true));
  exports.Set("bindUdp", Napi::Function::New(env, BindUdp, "bindUdp"));
  exports.Set("udpLocalPort", Napi::Function::New(env, UdpLocalPort, "udpLocalPort"));
  exports.Set("UdpRelay", UdpRelayObject::Define(env));
}

#endif  // __linux__

}  // namespace berth
