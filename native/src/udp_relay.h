// The native UDP relay (udp_relay.cc): a UDP forwarder's data plane on Node's event loop, Linux only.
#ifndef BERTH_NATIVE_UDP_RELAY_H_
#define BERTH_NATIVE_UDP_RELAY_H_

#include "napi.h"

namespace berth {

// Adds udpRelayAvailable and, on Linux, bindUdp, udpLocalPort and the UdpRelay class to `exports`.
void InitUdpRelay(Napi::Env env, Napi::Object exports);

}  // namespace berth

#endif  // BERTH_NATIVE_UDP_RELAY_H_
