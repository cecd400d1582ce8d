// The TCP relay's N-API layer: argument checks, Node's loop handles, and the JavaScript shape of
// tcp_relay.h's TcpRelay. Used by app/native/relays.ts, which checks every argument first; these checks
// throw TypeError rather than crash.
//
// Exports:
//   tcpRelayAvailable -> boolean (false and nothing else off Linux)
//   bindTcp(address, port) -> fd (listening, backlog 511, SO_REUSEADDR as libuv sets it)
//   new TcpRelay({ fd, target: { addresses, port } | { path }, connectTimeoutMs, maxConnections,
//                  retryRefusedMs })
//     .stats() .setTarget(target) .close()
// There are no callbacks into JavaScript: the engine polls stats().
#include "addon.h"

#ifdef __linux__
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <memory>
#include <string>

#include "listener.h"
#include "napi_util.h"
#include "relay_napi.h"
#include "socket_address.h"
#include "tcp_relay.h"
#include "unique_fd.h"
#endif

namespace berth {

#ifndef __linux__

void InitTcpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpRelayAvailable", Napi::Boolean::New(env, false));
}

#else

namespace {

constexpr const char* kShape = "{ fd, target, connectTimeoutMs, maxConnections, retryRefusedMs }";

// { addresses: string[], port } | { path }. TypeError when it is neither.
TcpTarget TargetArgument(Napi::Env env, const Napi::Value& value) {
  const char* shape = "target must be { addresses: string[], port: number } or { path: string }";
  if (!value.IsObject()) ThrowType(env, shape);
  Napi::Object obj = value.As<Napi::Object>();
  TcpTarget target;
  Napi::Value path = obj.Get("path");
  if (!path.IsUndefined()) {
    if (!path.IsString()) ThrowType(env, shape);
    std::string p = path.As<Napi::String>().Utf8Value();
    memset(&target.unix_addr, 0, sizeof(target.unix_addr));
    if (p.empty() || p.size() >= sizeof(target.unix_addr.sun_path) || p.find('\0') != std::string::npos) {
      ThrowType(env, "target.path must be a non-empty path that fits a Unix socket address");
    }
    target.is_unix = true;
    target.unix_addr.sun_family = AF_UNIX;
    memcpy(target.unix_addr.sun_path, p.data(), p.size());
    target.unix_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size() + 1);
    return target;
  }
  Napi::Value addresses = obj.Get("addresses");
  if (!addresses.IsArray()) ThrowType(env, shape);
  const auto port = static_cast<uint16_t>(IntegerOption(env, obj, "port", 1, 65535, "target.port"));
  Napi::Array list = addresses.As<Napi::Array>();
  if (list.Length() == 0 || list.Length() > kMaxTcpAddresses) {
    ThrowType(env, "target.addresses must hold 1-" + std::to_string(kMaxTcpAddresses) + " addresses");
  }
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    if (!item.IsString()) ThrowType(env, "target.addresses must be IPv4 or IPv6 literals");
    std::string text = item.As<Napi::String>().Utf8Value();
    TcpTarget::Address address;
    address.len = ParseAddress(text, port, &address.addr);
    if (address.len == 0) ThrowType(env, "target address '" + text + "' is not an IPv4 or IPv6 literal");
    target.addresses.push_back(address);
  }
  return target;
}

// bindTcp(address, port) -> fd: a non-blocking, close-on-exec TCP socket listening on address:port.
Napi::Value BindTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) ThrowType(env, "bindTcp() takes 2 arguments: address, port");
  if (!info[0].IsString()) ThrowType(env, "address must be a string (an IPv4 or IPv6 literal)");
  std::string text = info[0].As<Napi::String>().Utf8Value();
  double port;
  if (!IsInteger(info[1], 0, 65535, &port)) ThrowType(env, "port must be an integer 0-65535");
  sockaddr_storage addr;
  socklen_t len = ParseAddress(text, static_cast<uint16_t>(port), &addr);
  if (len == 0) ThrowType(env, "address must be an IPv4 or IPv6 literal, got '" + text + "'");
  UniqueFd sock;
  if (OsError e = BindListener(SOCK_STREAM, addr, len, &sock)) throw SysError(env, e);
  Napi::Number fd = Napi::Number::New(env, sock.get());
  sock.release();  // JavaScript's now
  return fd;
}

// The JavaScript object: owns the relay and its loop handles.
class TcpRelayObject : public Napi::ObjectWrap<TcpRelayObject>, public OpenRelay, private TcpRelay::Timer {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TcpRelay",
                       {InstanceMethod("stats", &TcpRelayObject::Stats),
                        InstanceMethod("setTarget", &TcpRelayObject::SetTarget),
                        InstanceMethod("close", &TcpRelayObject::CloseMethod)});
  }

  // The relay owns options.fd only if this returns: every throw leaves it open, for the caller to close.
  explicit TcpRelayObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TcpRelayObject>(info) {
    Napi::Env env = info.Env();
    Napi::Object options = OptionsArgument(info, "TcpRelay", kShape);
    const int fd = FdValue(env, options.Get("fd"), "options.fd");
    TcpRelayOptions parsed;
    TcpTarget target = TargetArgument(env, options.Get("target"));
    parsed.connect_timeout_ms =
        MillisecondsOption(env, options, "connectTimeoutMs", false, "options.connectTimeoutMs");
    parsed.max_connections = static_cast<uint64_t>(
        IntegerOption(env, options, "maxConnections", 1, 2147483647, "options.maxConnections"));
    parsed.retry_refused_ms =
        MillisecondsOption(env, options, "retryRefusedMs", true, "options.retryRefusedMs");

    relay_.reset(new TcpRelay(std::move(target), parsed, this));
    const std::string what = "fd " + std::to_string(fd);
    if (OsError e = relay_->Open()) throw SysError(env, e);
    handles_.Start(env, relay_->poll_fd(), OnPoll, this, what);
    entry_.Join(env, this);
    if (OsError e = relay_->Adopt(fd)) {
      Close();
      throw SysError(env, e);
    }
  }

  // Collected without close(): close now.
  ~TcpRelayObject() override { Close(); }

  void Close() override {
    if (relay_ == nullptr || relay_->closed()) return;
    handles_.Close();  // before the epoll fd closes
    relay_->Close();
    entry_.Leave();
  }

 private:
  void Start(uint64_t delay_ms) override { handles_.StartTimer(OnTimer, delay_ms, 0); }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<TcpRelayObject*>(handle->data);
    if (status < 0) {
      // POLLERR on an epoll fd does not happen; should it, libuv stopped the handle: poll again.
      if (uv_poll_start(handle, UV_READABLE, OnPoll) != 0) return;
    }
    self->relay_->OnReadable(self->handles_.Now());
  }

  static void OnTimer(uv_timer_t* timer) {
    auto* self = static_cast<TcpRelayObject*>(timer->data);
    self->relay_->OnTimer(self->handles_.Now());
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const TcpRelayStats stats = relay_->stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("active", Napi::Number::New(env, static_cast<double>(stats.active)));
    out.Set("total", Napi::Number::New(env, static_cast<double>(stats.total)));
    out.Set("toTarget", Napi::Number::New(env, static_cast<double>(stats.to_target)));
    out.Set("fromTarget", Napi::Number::New(env, static_cast<double>(stats.from_target)));
    out.Set("errors", Napi::Number::New(env, static_cast<double>(relay_->errors().count())));
    out.Set("lastError", LastError(env, relay_->errors()));
    return out;
  }

  // setTarget(target): connections accepted from now on go there; open ones keep theirs.
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
  std::unique_ptr<TcpRelay> relay_;
  LoopHandles handles_;
  RelayEntry entry_;
};

}  // namespace

void InitTcpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpRelayAvailable", Napi::Boolean::New(env, true));
  exports.Set("bindTcp", Napi::Function::New(env, BindTcp, "bindTcp"));
  exports.Set("TcpRelay", TcpRelayObject::Define(env));
}

#endif  // __linux__

}  // namespace berth
