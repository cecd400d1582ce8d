// libFuzzer target for the parser berth-helper runs on every byte a client sends (and for the reply parser
// the addon runs on every byte the helper sends). Built and run by scripts/native-fuzz.sh under ASan+UBSan.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/protocol.h"

namespace p = berth::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The helper hands the parser exactly what it read: at most one byte past a frame (native/src/helper.cc
  // stops reading there), but the parser must hold for any length.
  p::Request request;
  p::ParseError error = p::ParseRequest(data, size, &request);
  if (strlen(p::ParseErrorMessage(error)) >= p::kMessageSize) abort();
  if (error == p::ParseError::kOk) {
    // Whatever parses must be exactly one well-formed frame that encodes back to the same bytes.
    if (size != p::kRequestSize) abort();
    uint8_t again[p::kRequestSize];
    p::EncodeRequest(request, again);
    if (memcmp(again, data, p::kRequestSize) != 0) abort();
    if (request.op == p::kOpBind && request.port == 0) abort();
  }

  p::Reply reply;
  if (p::ParseReply(data, size, &reply)) {
    if (strlen(reply.message) > p::kMessageSize || strlen(reply.syscall) > p::kSyscallSize) abort();
    for (const char* c = reply.message; *c != '\0'; ++c) {
      if (static_cast<unsigned char>(*c) < 0x20) abort();
    }
    uint8_t frame[p::kReplySize];
    p::EncodeReply(reply, frame);
  }
  return 0;
}
