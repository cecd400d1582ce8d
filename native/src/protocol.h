// The berth-helper wire protocol, shared by the helper, the addon and the fuzz target (one definition, so
// the two ends cannot drift). Byte layout and rationale: docs/helper-protocol.md.
//
// A client connects to the helper's Unix stream socket, writes one request frame, shuts down its write
// side, and reads one reply frame; a successful bind reply carries exactly one fd in SCM_RIGHTS. One request
// per connection keeps "which fd belongs to which reply" trivial and makes truncated and oversized frames
// detectable (the end of the request is the client's EOF).
//
// Everything here is pure: no system calls, no allocation, so the parser can be fuzzed on its own.
#ifndef BERTH_NATIVE_PROTOCOL_H_
#define BERTH_NATIVE_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace berth {
namespace protocol {

// "BRTH": lets the helper reject a stray client (or a different protocol) at the first four bytes.
constexpr uint8_t kMagic[4] = {'B', 'R', 'T', 'H'};
constexpr uint8_t kVersion = 1;

constexpr size_t kRequestSize = 32;
constexpr size_t kReplySize = 160;
constexpr size_t kSyscallSize = 16;
constexpr size_t kMessageSize = 128;

enum Op : uint8_t { kOpPing = 1, kOpBind = 2 };
enum Protocol : uint8_t { kProtocolNone = 0, kProtocolTcp = 1, kProtocolUdp = 2 };
enum Family : uint8_t { kFamilyNone = 0, kFamilyIpv4 = 4, kFamilyIpv6 = 6 };

// How the helper answered: a policy refusal, a frame it could not accept, or a system call that failed.
enum Status : uint8_t { kStatusOk = 0, kStatusDenied = 1, kStatusBadRequest = 2, kStatusFailed = 3 };

struct Request {
  uint8_t op = 0;
  uint8_t protocol = kProtocolNone;
  uint8_t family = kFamilyNone;
  uint8_t address[16] = {};  // network order; IPv4 uses the first 4 bytes
  uint16_t port = 0;         // host order here, big-endian on the wire
};

struct Reply {
  uint8_t op = 0;
  uint8_t status = kStatusOk;
  int32_t error = 0;     // the helper's errno (same machine, so same numbering as the client's)
  uint32_t version = 0;  // the newest protocol version the helper speaks
  char syscall[kSyscallSize + 1] = {};
  char message[kMessageSize + 1] = {};
};

enum class ParseError {
  kOk,
  kTruncated,
  kOversized,
  kBadMagic,
  kBadVersion,
  kBadOp,
  kBadProtocol,
  kBadFamily,
  kBadAddress,
  kBadPort,
  kReservedNotZero,
};

// A sentence for the reply's message field, short enough for it (kMessageSize).
inline const char* ParseErrorMessage(ParseError error) {
  switch (error) {
    case ParseError::kOk:
      return "ok";
    case ParseError::kTruncated:
      return "request frame is shorter than 32 bytes";
    case ParseError::kOversized:
      return "request frame is longer than 32 bytes";
    case ParseError::kBadMagic:
      return "request frame does not start with BRTH: not a berth-helper client";
    case ParseError::kBadVersion:
      return "unsupported protocol version: this berth-helper speaks version 1";
    case ParseError::kBadOp:
      return "unknown operation: expected 1 (ping) or 2 (bind)";
    case ParseError::kBadProtocol:
      return "unknown protocol: expected 1 (tcp) or 2 (udp)";
    case ParseError::kBadFamily:
      return "unknown address family: expected 4 (IPv4) or 6 (IPv6)";
    case ParseError::kBadAddress:
      return "address is multicast, broadcast or link-local: only local unicast addresses are bound";
    case ParseError::kBadPort:
      return "port 0 is not a port berth-helper binds";
    case ParseError::kReservedNotZero:
      return "reserved bytes of the request frame are not zero";
  }
  return "malformed request";
}

inline bool AllZero(const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != 0) return false;
  }
  return true;
}

// Multicast and broadcast cannot be listened on as a forward; IPv6 link-local needs a scope id the frame
// does not carry. Everything else is left to bind() and the helper's local-address check.
inline bool AddressAllowed(uint8_t family, const uint8_t* address) {
  if (family == kFamilyIpv4) {
    if (address[0] >= 224) return false;  // 224/4 multicast, 240/4 reserved, 255.255.255.255
    return AllZero(address + 4, 12);
  }
  if (address[0] == 0xff) return false;                                 // ff00::/8 multicast
  if (address[0] == 0xfe && (address[1] & 0xc0) == 0x80) return false;  // fe80::/10 link-local
  return true;
}

// Parses exactly one request frame. `size` is everything the client sent before its EOF.
inline ParseError ParseRequest(const uint8_t* data, size_t size, Request* out) {
  if (size < 4 || memcmp(data, kMagic, 4) != 0) {
    // A short frame that is a prefix of the magic is merely truncated; anything else is not ours.
    if (size < 4 && memcmp(data, kMagic, size) == 0) return ParseError::kTruncated;
    return ParseError::kBadMagic;
  }
  if (size < 5) return ParseError::kTruncated;
  if (data[4] != kVersion) return ParseError::kBadVersion;
  if (size < kRequestSize) return ParseError::kTruncated;
  if (size > kRequestSize) return ParseError::kOversized;
  if (!AllZero(data + 26, 6)) return ParseError::kReservedNotZero;
  Request request;
  request.op = data[5];
  request.protocol = data[6];
  request.family = data[7];
  memcpy(request.address, data + 8, 16);
  request.port = static_cast<uint16_t>((data[24] << 8) | data[25]);
  if (request.op == kOpPing) {
    // A ping names nothing: all the bind fields must be empty, so no byte is ever ignored silently.
    if (request.protocol != kProtocolNone || request.family != kFamilyNone || !AllZero(request.address, 16) ||
        request.port != 0) {
      return ParseError::kReservedNotZero;
    }
    *out = request;
    return ParseError::kOk;
  }
  if (request.op != kOpBind) return ParseError::kBadOp;
  if (request.protocol != kProtocolTcp && request.protocol != kProtocolUdp) {
    return ParseError::kBadProtocol;
  }
  if (request.family != kFamilyIpv4 && request.family != kFamilyIpv6) return ParseError::kBadFamily;
  if (!AddressAllowed(request.family, request.address)) return ParseError::kBadAddress;
  if (request.port == 0) return ParseError::kBadPort;
  *out = request;
  return ParseError::kOk;
}

inline void EncodeRequest(const Request& request, uint8_t out[kRequestSize]) {
  memset(out, 0, kRequestSize);
  memcpy(out, kMagic, 4);
  out[4] = kVersion;
  out[5] = request.op;
  out[6] = request.protocol;
  out[7] = request.family;
  memcpy(out + 8, request.address, 16);
  out[24] = static_cast<uint8_t>(request.port >> 8);
  out[25] = static_cast<uint8_t>(request.port & 0xff);
}

inline void PutU32(uint8_t* out, uint32_t value) {
  out[0] = static_cast<uint8_t>(value >> 24);
  out[1] = static_cast<uint8_t>(value >> 16);
  out[2] = static_cast<uint8_t>(value >> 8);
  out[3] = static_cast<uint8_t>(value);
}

inline uint32_t GetU32(const uint8_t* in) {
  return (static_cast<uint32_t>(in[0]) << 24) | (static_cast<uint32_t>(in[1]) << 16) |
         (static_cast<uint32_t>(in[2]) << 8) | static_cast<uint32_t>(in[3]);
}

// Text fields are NUL-padded and may fill their whole width (then they have no NUL).
inline void EncodeReply(const Reply& reply, uint8_t out[kReplySize]) {
  memset(out, 0, kReplySize);
  memcpy(out, kMagic, 4);
  out[4] = kVersion;
  out[5] = reply.op;
  out[6] = reply.status;
  PutU32(out + 8, static_cast<uint32_t>(reply.error));
  PutU32(out + 12, reply.version);
  memcpy(out + 16, reply.syscall, strnlen(reply.syscall, kSyscallSize));
  memcpy(out + 32, reply.message, strnlen(reply.message, kMessageSize));
}

inline bool ParseReply(const uint8_t* data, size_t size, Reply* out) {
  if (size != kReplySize || memcmp(data, kMagic, 4) != 0 || data[4] != kVersion || data[7] != 0) {
    return false;
  }
  Reply reply;
  reply.op = data[5];
  reply.status = data[6];
  if (reply.status > kStatusFailed) return false;
  reply.error = static_cast<int32_t>(GetU32(data + 8));
  reply.version = GetU32(data + 12);
  memcpy(reply.syscall, data + 16, kSyscallSize);
  memcpy(reply.message, data + 32, kMessageSize);
  // Control characters would let a hostile peer forge lines in logs and error messages.
  for (char* c = reply.syscall; *c != '\0'; ++c) {
    if (static_cast<unsigned char>(*c) < 0x20 || *c == 0x7f) *c = '?';
  }
  for (char* c = reply.message; *c != '\0'; ++c) {
    if (static_cast<unsigned char>(*c) < 0x20 || *c == 0x7f) *c = '?';
  }
  *out = reply;
  return true;
}

}  // namespace protocol
}  // namespace berth

#endif  // BERTH_NATIVE_PROTOCOL_H_
