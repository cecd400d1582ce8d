// Berth's own process: what a backend supervisor needs that Node does not offer (docs/backends.md).
// Used by app/native/process.ts, which checks every argument first; these checks throw TypeError rather
// than crash.
//
// Exports:
//   childSubreaperAvailable -> boolean (false and nothing else off Linux)
//   setChildSubreaper()      prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of Berth's descendants become its
//                            children instead of init's
//   reapChild(pid) -> bool   waitpid(pid, WNOHANG) for that one pid: true if it had exited and is now reaped,
//                            false if it runs or is not Berth's child. Never waits for any child (pid <= 0):
//                            that would take the exit statuses libuv waits for.
#include "addon.h"
#include "napi.h"

#ifndef __linux__

namespace berth {
void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("childSubreaperAvailable", Napi::Boolean::New(env, false));
}
}  // namespace berth

#else

#include <errno.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <climits>
#include <string>

#include "napi_util.h"
#include "os_error.h"

namespace berth {

namespace {

// The plain C++ below the N-API layer.

OsError SetChildSubreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL) != 0) {
    return OsError{errno, "prctl", "PR_SET_CHILD_SUBREAPER"};
  }
  return OsError{};
}

// True when `pid` (> 0) had exited and has been reaped; false when it runs or is not our child (ECHILD).
bool ReapChild(pid_t pid, OsError* error) {
  for (;;) {
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) return true;
    if (got == 0) return false;
    if (errno == EINTR) continue;
    if (errno != ECHILD) *error = OsError{errno, "waitpid", std::to_string(pid)};
    return false;
  }
}

// The N-API layer.

Napi::Value SetChildSubreaperJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 0) ThrowType(env, "setChildSubreaper takes no arguments");
  OsError error = SetChildSubreaper();
  if (error) throw SysError(env, error);
  return env.Undefined();
}

Napi::Value ReapChildJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double pid = 0;
  // 1 and up only: 0 and negative numbers ask waitpid for any child of a group, or any child at all.
  if (info.Length() != 1 || !IsInteger(info[0], 1, INT_MAX, &pid)) {
    ThrowType(env, "reapChild takes 1 argument: a pid, an integer from 1 to 2147483647");
  }
  OsError error;
  bool reaped = ReapChild(static_cast<pid_t>(pid), &error);
  if (error) throw SysError(env, error);
  return Napi::Boolean::New(env, reaped);
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("childSubreaperAvailable", Napi::Boolean::New(env, true));
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaperJs, "setChildSubreaper"));
  exports.Set("reapChild", Napi::Function::New(env, ReapChildJs, "reapChild"));
}

}  // namespace berth

#endif  // __linux__
