// What the addon keeps per environment (the main thread's, and each worker's): its open relays, closed
// together by the addon's one cleanup hook when the environment goes away, as better-sqlite3's
// src/addon.cpp does with its databases. Registered in addon.cc.
#ifndef BERTH_NATIVE_ADDON_H_
#define BERTH_NATIVE_ADDON_H_

#include <unordered_set>
#include <vector>

#include "napi.h"

namespace berth {

// A relay object of this environment that is not closed yet.
class OpenRelay {
 public:
  // Idempotent and synchronous; leaves the environment's set of open relays.
  virtual void Close() = 0;

 protected:
  ~OpenRelay() = default;
};

struct Addon {
  std::unordered_set<OpenRelay*> relays;

  // Runs before N-API finalizes this environment's objects (hooks run in reverse order of registration, and
  // N-API registered its own before the module's Init ran), so every handle closes while its loop is alive.
  static void Cleanup(Addon* addon) {
    std::vector<OpenRelay*> open(addon->relays.begin(), addon->relays.end());
    for (OpenRelay* relay : open) relay->Close();
    delete addon;
  }

  static Addon* Of(Napi::Env env) { return env.GetInstanceData<Addon>(); }

  // Instance data without a finalizer: Cleanup frees it.
  static void Forget(Napi::Env, Addon*) {}
};

// The exports of each part, added by addon.cc's Init.
void InitHelperRequest(Napi::Env env, Napi::Object exports);  // helper_napi.cc
void InitTcpRelay(Napi::Env env, Napi::Object exports);       // tcp_relay_napi.cc
void InitUdpRelay(Napi::Env env, Napi::Object exports);       // udp_relay_napi.cc
void InitProcess(Napi::Env env, Napi::Object exports);        // process_napi.cc

}  // namespace berth

#endif  // BERTH_NATIVE_ADDON_H_
