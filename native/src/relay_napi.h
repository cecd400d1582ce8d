// What the two relays' N-API layers (tcp_relay_napi.cc, udp_relay_napi.cc) share: Node's loop side of a
// relay, and its place among its environment's open relays. Linux only, like the relays.
#ifndef BERTH_NATIVE_RELAY_NAPI_H_
#define BERTH_NATIVE_RELAY_NAPI_H_

#ifdef __linux__
#include <uv.h>

#include <memory>
#include <string>

#include "addon.h"
#include "napi.h"
#include "napi_util.h"

namespace berth {

// A uv_poll_t on the relay's epoll fd and a uv_timer_t. Each is its own allocation, freed in its uv_close
// callback, so it may outlive the relay by a loop turn. The timer is unreferenced: an idle relay must not
// keep Node's loop alive (its poll does, while it is open).
class LoopHandles {
 public:
  LoopHandles() = default;
  LoopHandles(const LoopHandles&) = delete;
  LoopHandles& operator=(const LoopHandles&) = delete;
  ~LoopHandles() { Close(); }

  // Polls `fd` for reading with `on_readable`; `data` is both handles' data. Throws a SysError naming `what`
  // when libuv refuses (the handles are closed again).
  void Start(Napi::Env env, int fd, uv_poll_cb on_readable, void* data, const std::string& what) {
    if (napi_get_uv_event_loop(env, &loop_) != napi_ok || loop_ == nullptr) {
      throw Napi::Error::New(env, what + ": no libuv event loop");
    }
    std::unique_ptr<uv_poll_t> poll(new uv_poll_t());
    std::unique_ptr<uv_timer_t> timer(new uv_timer_t());
    int r = uv_poll_init(loop_, poll.get(), fd);
    if (r != 0) throw SysError(env, -r, "uv_poll_init", what);
    poll->data = data;
    poll_ = poll.release();
    r = uv_poll_start(poll_, UV_READABLE, on_readable);
    if (r != 0) {
      Close();
      throw SysError(env, -r, "uv_poll_start", what);
    }
    uv_timer_init(loop_, timer.get());
    timer->data = data;
    uv_unref(reinterpret_cast<uv_handle_t*>(timer.get()));
    timer_ = timer.release();
  }

  uint64_t Now() const { return uv_now(loop_); }

  // Replaces the timer started before.
  void StartTimer(uv_timer_cb callback, uint64_t delay_ms, uint64_t repeat_ms) {
    if (timer_ != nullptr) uv_timer_start(timer_, callback, delay_ms, repeat_ms);
  }

  // Stops both at once: uv_close takes the fd out of Node's epoll, so the fd may be closed right after.
  void Close() {
    if (poll_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), Free<uv_poll_t>);
      poll_ = nullptr;
    }
    if (timer_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), Free<uv_timer_t>);
      timer_ = nullptr;
    }
  }

 private:
  template <typename Handle>
  static void Free(uv_handle_t* handle) {
    delete reinterpret_cast<Handle*>(handle);
  }

  uv_loop_t* loop_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
};

// A relay object's entry in its environment's open relays, left by Leave() (Close) or at the latest by its
// destructor.
class RelayEntry {
 public:
  RelayEntry() = default;
  RelayEntry(const RelayEntry&) = delete;
  RelayEntry& operator=(const RelayEntry&) = delete;
  ~RelayEntry() { Leave(); }

  void Join(Napi::Env env, OpenRelay* relay) {
    addon_ = Addon::Of(env);
    addon_->relays.insert(relay);
    relay_ = relay;
  }

  void Leave() {
    if (relay_ == nullptr) return;
    addon_->relays.erase(relay_);
    relay_ = nullptr;
  }

 private:
  Addon* addon_ = nullptr;
  OpenRelay* relay_ = nullptr;
};

}  // namespace berth

#endif  // __linux__

#endif  // BERTH_NATIVE_RELAY_NAPI_H_
