// The berth-helper client's N-API layer: request() checks its options, runs helper_client.h's AskHelper
// on a libuv worker thread (it blocks until the helper answers) and settles a Promise with the fd or a
// Node-style error. Used by app/native/helper-request.ts, which checks every option first; these checks
// throw TypeError rather than crash.
//
// Exports:
//   request({ socketPath, op, protocol, address, port, timeoutMs, receivePath }) -> Promise<number | object>
//     (protocol, address and port for op 'bind' only)
//   receivePaths -> { native, available[] }
//   protocolVersion -> number
//   testLeaveCloexecOff(on)  (only in the berth_native_test build, see below)
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <string>
#include <utility>

#include "addon.h"
#include "helper_client.h"
#include "napi.h"
#include "napi_util.h"
#include "protocol.h"

namespace berth {

namespace {

namespace p = protocol;

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

class RequestWorker : public Napi::AsyncWorker {
 public:
  RequestWorker(Napi::Env env, HelperRequest request)
      : Napi::AsyncWorker(env, "berth:helper-request"),
        request_(std::move(request)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // Runs on the thread pool: plain C++ only, no N-API calls.
  void Execute() override { outcome_ = AskHelper(request_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!outcome_.ok) {
      deferred_.Reject(MakeError(env, outcome_.failure));
      return;
    }
    if (request_.request.op == p::kOpPing) {
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
  static Napi::Value MakeError(Napi::Env env, const HelperFailure& f) {
    Napi::Error error = Napi::Error::New(env, f.message);
    Napi::Object obj = error.Value();
    obj.Set("code", Napi::String::New(env, f.code.empty() ? ErrnoCode(f.error) : f.code));
    // Node reports errno negated (libuv style), e.g. -98 for EADDRINUSE.
    if (f.error != 0) obj.Set("errno", Napi::Number::New(env, -f.error));
    if (!f.syscall.empty()) obj.Set("syscall", Napi::String::New(env, f.syscall));
    obj.Set("stage", Napi::String::New(env, f.stage));
    if (*f.status != '\0') obj.Set("helperStatus", Napi::String::New(env, f.status));
    return obj;
  }

  HelperRequest request_;
  HelperOutcome outcome_;
  Napi::Promise::Deferred deferred_;
};

constexpr const char* kShape = "{ socketPath, op, protocol, address, port, timeoutMs, receivePath }";

// The bind fields of a request: protocol, address and port.
void BindArguments(Napi::Env env, const Napi::Object& options, p::Request* request) {
  std::string protocol = StringOption(env, options, "protocol", "protocol", "'tcp' or 'udp'");
  if (protocol == "tcp") {
    request->protocol = p::kProtocolTcp;
  } else if (protocol == "udp") {
    request->protocol = p::kProtocolUdp;
  } else {
    ThrowType(env, "protocol must be 'tcp' or 'udp'");
  }
  std::string address = StringOption(env, options, "address", "address", "an IPv4 or IPv6 literal");
  if (inet_pton(AF_INET, address.c_str(), request->address) == 1) {
    request->family = p::kFamilyIpv4;
  } else if (inet_pton(AF_INET6, address.c_str(), request->address) == 1) {
    request->family = p::kFamilyIpv6;
  } else {
    ThrowType(env, "address must be an IPv4 or IPv6 literal");
  }
  request->port = static_cast<uint16_t>(IntegerOption(env, options, "port", 1, 65535, "port"));
}

// request(options) -> Promise
Napi::Value Request(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = OptionsArgument(info, "request()", kShape);
  HelperRequest request;
  request.socket_path = StringOption(env, options, "socketPath", "socketPath", "a string");
  if (request.socket_path.empty() || request.socket_path.size() >= sizeof(sockaddr_un::sun_path) ||
      request.socket_path.find('\0') != std::string::npos) {
    ThrowType(env, "socketPath must be a non-empty path that fits a Unix socket address");
  }
  std::string op = StringOption(env, options, "op", "op", "'ping' or 'bind'");
  if (op == "ping") {
    request.request.op = p::kOpPing;
    for (const char* field : {"protocol", "address", "port"}) {
      if (!options.Get(field).IsUndefined()) ThrowType(env, std::string("a ping takes no ") + field);
    }
  } else if (op == "bind") {
    request.request.op = p::kOpBind;
    BindArguments(env, options, &request.request);
  } else {
    ThrowType(env, "op must be 'ping' or 'bind'");
  }
  request.timeout_ms = static_cast<int64_t>(IntegerOption(env, options, "timeoutMs", 1, 600000, "timeoutMs"));
  std::string receive =
      StringOption(env, options, "receivePath", "receivePath", "'msg-cmsg-cloexec' or 'fcntl'");
  if (receive == "msg-cmsg-cloexec") {
#ifndef MSG_CMSG_CLOEXEC
    ThrowType(env, "receivePath 'msg-cmsg-cloexec' needs MSG_CMSG_CLOEXEC, which this OS lacks");
#endif
    request.receive = ReceivePath::kCmsgCloexec;
  } else if (receive == "fcntl") {
    request.receive = ReceivePath::kFcntl;
  } else {
    ThrowType(env, "receivePath must be 'msg-cmsg-cloexec' or 'fcntl'");
  }
  request.leave_cloexec_off = LeaveCloexecOff();
  auto* worker = new RequestWorker(env, std::move(request));
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

}  // namespace

void InitHelperRequest(Napi::Env env, Napi::Object exports) {
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
}

}  // namespace berth
