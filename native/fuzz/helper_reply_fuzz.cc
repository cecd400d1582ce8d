// libFuzzer target for what the addon's helper client (native/src/helper_client.h) runs on every byte a
// helper sends: the walk over the control messages of a reply (the fds that came with it) and the judgement
// of the reply frame. Built and run by scripts/native-fuzz.sh under ASan+UBSan.
//
// Input: byte 0 picks the request (even: ping, odd: bind); bytes 1-2 (big-endian) are the length of the
// control data that follows, capped at the client's buffer; the rest is the reply frame. The fds in the
// control data are only counted, never closed: they are numbers the fuzzer made up.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "../src/helper_client.h"
#include "../src/protocol.h"

namespace p = berth::protocol;

namespace {

// As large as the client's own control buffer (64 fds).
constexpr size_t kControlSize = CMSG_SPACE(64 * sizeof(int));

bool Printable(const std::string& text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t op = (data[0] & 1) ? p::kOpBind : p::kOpPing;
  size_t control_size = (static_cast<size_t>(data[1]) << 8) | data[2];
  data += 3;
  size -= 3;
  if (control_size > size) control_size = size;
  if (control_size > kControlSize) control_size = kControlSize;

  // Exactly as long as the data (new[] aligns it for cmsghdr), so ASan sees any read past what
  // msg_controllen allows.
  std::unique_ptr<uint8_t[]> control(new uint8_t[control_size == 0 ? 1 : control_size]);
  memcpy(control.get(), data, control_size);
  size_t fds = 0;
  berth::ForEachPassedFd(control_size == 0 ? nullptr : control.get(), control_size,
                         [&fds](int) { fds += 1; });
  if (fds > control_size / sizeof(int)) abort();

  const uint8_t* frame = data + control_size;
  const size_t frame_size = size - control_size;
  p::Reply reply;
  berth::HelperFailure failure;
  if (berth::JudgeReply(op, frame, frame_size, fds, &reply, &failure)) {
    // Success only for one well-formed OK frame answering this op, with exactly the fds it carries.
    p::Reply again;
    if (!p::ParseReply(frame, frame_size, &again) || again.status != p::kStatusOk) abort();
    if (reply.op != 0 && reply.op != op) abort();
    if (fds != (op == p::kOpBind ? 1u : 0u)) abort();
    return 0;
  }
  // Every failure says where, in a sentence, with a code or an errno to name it; nothing the helper sent
  // may put a control character (a forged log line) into it.
  if (*failure.stage == '\0' || failure.message.empty()) abort();
  if (failure.code.empty() && failure.error <= 0) abort();
  if (!Printable(failure.message) || !Printable(failure.syscall)) abort();
  return 0;
}
