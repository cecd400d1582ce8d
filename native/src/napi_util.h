// What the addon's N-API layer shares: Node-style errors (the one copy of ErrnoCode, SysError and
// ThrowType), readers of option objects that throw TypeError rather than crash, and the JavaScript shape of
// a relay's ErrorLog. The code below this layer is plain C++ and reports failures as OsError values.
#ifndef BERTH_NATIVE_NAPI_UTIL_H_
#define BERTH_NATIVE_NAPI_UTIL_H_

#include <string.h>
#include <uv.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "napi.h"
#include "os_error.h"

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

inline Napi::Error SysError(Napi::Env env, const OsError& error) {
  return SysError(env, error.error, error.syscall, error.what);
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

// The one argument of a function that takes an options object; `shape` describes it in the TypeError.
inline Napi::Object OptionsArgument(const Napi::CallbackInfo& info, const char* function, const char* shape) {
  if (info.Length() != 1 || !info[0].IsObject()) {
    ThrowType(info.Env(), std::string(function) + " takes 1 argument: " + shape);
  }
  return info[0].As<Napi::Object>();
}

// options[name], an integer in [lo, hi]; `label` names it in the TypeError ("options.maxConnections").
inline double IntegerOption(Napi::Env env, const Napi::Object& options, const char* name, double lo,
                            double hi, const std::string& label) {
  double value;
  if (!IsInteger(options.Get(name), lo, hi, &value)) {
    ThrowType(env, label + " must be an integer " + std::to_string(static_cast<int64_t>(lo)) + "-" +
                       std::to_string(static_cast<int64_t>(hi)));
  }
  return value;
}

// options[name], a number of milliseconds in (0, 2147483647] (or [0, ...] when `zero_ok`), rounded up.
inline uint64_t MillisecondsOption(Napi::Env env, const Napi::Object& options, const char* name, bool zero_ok,
                                   const std::string& label) {
  Napi::Value value = options.Get(name);
  double ms = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!((zero_ok ? ms >= 0 : ms > 0) && ms <= 2147483647)) {
    ThrowType(env, label + " must be " + (zero_ok ? ">= 0" : "> 0") + " and <= 2147483647");
  }
  return static_cast<uint64_t>(std::ceil(ms));
}

// options[name], a string; `what` says what it must be in the TypeError.
inline std::string StringOption(Napi::Env env, const Napi::Object& options, const char* name,
                                const std::string& label, const char* what) {
  Napi::Value value = options.Get(name);
  if (!value.IsString()) ThrowType(env, label + " must be " + what);
  return value.As<Napi::String>().Utf8Value();
}

// A file descriptor: options.fd, or a function's argument.
inline int FdValue(Napi::Env env, const Napi::Value& value, const std::string& label) {
  double fd;
  if (!IsInteger(value, 0, 2147483647, &fd)) ThrowType(env, label + " must be an integer 0-2147483647");
  return static_cast<int>(fd);
}

// { code, errno, syscall } of a relay's last error (errno negative as Node's, 0 for a relay's own code such
// as EMAXCONN), or null when there was none.
inline Napi::Value LastError(Napi::Env env, const ErrorLog& log) {
  if (!log.has_last()) return env.Null();
  Napi::Object last = Napi::Object::New(env);
  const int error = log.last_errno();
  last.Set("code", Napi::String::New(env, log.last_code() != nullptr ? log.last_code() : ErrnoCode(error)));
  last.Set("errno", Napi::Number::New(env, error == 0 ? 0 : -error));
  last.Set("syscall", Napi::String::New(env, log.last_syscall()));
  return last;
}

}  // namespace berth

#endif  // BERTH_NATIVE_NAPI_UTIL_H_
