// The native TCP relay (tcp_relay.cc): a TCP forward's data plane on Node's event loop, Linux only.
#ifndef BERTH_NATIVE_TCP_RELAY_H_
#define BERTH_NATIVE_TCP_RELAY_H_

#include "napi.h"

namespace berth {

// Adds tcpRelayAvailable and, on Linux, bindTcp and the TcpRelay class to `exports`.
void InitTcpRelay(Napi::Env env, Napi::Object exports);

}  // namespace berth

#endif  // BERTH_NATIVE_TCP_RELAY_H_
