// berth_native: the addon's registration, and nothing else (as sharp's src/sharp.cc). The work is plain C++
// below an N-API layer per part:
//   helper_napi.cc    request(): asks berth-helper for a bound socket (helper_client.h)
//   tcp_relay_napi.cc the TCP relay (tcp_relay.h), bindTcp
//   udp_relay_napi.cc the UDP relay (udp_relay.h), bindUdp, udpLocalPort
//   process_napi.cc   Berth's own process: child subreaper, reaping one adopted child
// The TypeScript side is app/native/. Every fd the addon opens or receives is close-on-exec from its first
// instant (docs/helper-protocol.md, docs/forwarding.md).
#include "addon.h"

#include "napi.h"

namespace berth {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // One cleanup hook for the whole addon closes whatever this environment left open (a worker that exits).
  auto* addon = new Addon();
  env.SetInstanceData<Addon, Addon::Forget>(addon);
  env.AddCleanupHook(Addon::Cleanup, addon);
  InitHelperRequest(env, exports);
  InitUdpRelay(env, exports);  // Linux only: elsewhere udpRelayAvailable is false
  InitTcpRelay(env, exports);  // Linux only: elsewhere tcpRelayAvailable is false
  InitProcess(env, exports);   // Linux only: elsewhere childSubreaperAvailable is false
  return exports;
}

}  // namespace
}  // namespace berth

// The macro pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitBerthNative(Napi::Env env, Napi::Object exports) { return berth::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitBerthNative)
