// IP literals as socket addresses, and socket addresses as text: what the relays and their N-API layer share
// about addresses. Plain C++ (no N-API), Linux and macOS.
#ifndef BERTH_NATIVE_SOCKET_ADDRESS_H_
#define BERTH_NATIVE_SOCKET_ADDRESS_H_

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace berth {

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

}  // namespace berth

#endif  // BERTH_NATIVE_SOCKET_ADDRESS_H_
