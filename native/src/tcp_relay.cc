// The native TCP relay: a TCP forward's data plane that never enters JavaScript (used by
// app/engine/tcp-native.ts; net.Socket in app/engine/tcp-node.ts is the fallback).
//
// net.Socket costs a handle, a JS object graph and a JS callback per event, per connection. The relay keeps a
// small struct per connection and no buffer while it is idle: each read goes through one per-thread 64 KiB
// scratch buffer straight into a write to the other side, and only the bytes the other side could not take
// yet are kept (on the heap, until flushed; the source is not read meanwhile: that is the backpressure).
//
// Event handling: one epoll instance per relay holds the listener and every connection's two sockets; Node's
// loop polls that epoll fd with a single uv_poll_t. (A uv_poll_t per socket would cost libuv's per-handle
// checks, three system calls at each uv_poll_init and one more at each stop, for every connection.) One
// uv_timer_t per relay drives the connect deadlines and the retries of a refused target.
//
// Every fd is close-on-exec from creation (SOCK_CLOEXEC, accept4, EPOLL_CLOEXEC, O_CLOEXEC): a backend Berth
// spawns must never inherit a listener or a connection (../shared/DESIGN.md, "Acquiring a listener").
//
// Exports (arguments are checked in TypeScript first; these re-check and throw TypeError rather than crash):
//   tcpRelayAvailable -> boolean (false and nothing else off Linux)
//   bindTcp(address, port) -> fd (listening, backlog 511, SO_REUSEADDR as libuv sets it)
//   new TcpRelay(listenFd, { addresses, port } | { path }, { connectTimeoutMs, maxConnections, retryRefusedMs
//   })
//     .stats() .setTarget(target) .close()
// There are no callbacks into JavaScript: the engine polls stats().
#include "tcp_relay.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "relay_util.h"
#include "unique_fd.h"
#endif

namespace berth {

#ifndef __linux__

void InitTcpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpRelayAvailable", Napi::Boolean::New(env, false));
}

#else

namespace {

constexpr size_t kChunk = 64 * 1024;  // one read, at most
constexpr int kMaxAccepts = 64;       // per readiness of the listener, so accepting cannot starve the loop
constexpr int kMaxReads = 4;          // per direction per event, for the same reason
constexpr int kMaxEvents = 128;       // per epoll_wait
constexpr int kMaxRounds = 4;         // epoll_waits per callback
// Bytes moved per callback before Node's loop gets its turn (about 2 ms of copying here), so many busy
// connections cannot hold up the engine's API and timers. What is left stays ready in the (level-triggered)
// epoll, which keeps the relay's fd readable for the next turn.
constexpr uint64_t kMaxBytesPerCallback = 4u << 20;
constexpr uint64_t kPauseMs = 100;    // the listener rests this long when an fd limit cannot be shed
constexpr size_t kMaxAddresses = 64;
constexpr int kMaxShed = 1024;       // connections shed per turn when out of fds
// How long one address may take before the next is tried, as Node's autoSelectFamilyAttemptTimeout.
constexpr uint64_t kAttemptMs = 250;

// Tags in the low bits of epoll_event.data.u64 (a Conn is 8-byte aligned): which socket of a connection.
constexpr uint64_t kTagListener = 0;
constexpr uint64_t kTagClient = 1;
constexpr uint64_t kTagTarget = 2;

// The read buffer, one per thread: each thread (main, or a worker with its own loop) runs its relays'
// callbacks one at a time, so they all share it. Allocated on first use.
uint8_t* Scratch() {
  thread_local std::unique_ptr<uint8_t[]> buffer;
  if (!buffer) buffer.reset(new uint8_t[kChunk]);
  return buffer.get();
}

// Where connections go: IP addresses tried in order, or a Unix socket.
struct Target {
  struct Address {
    sockaddr_storage addr;
    socklen_t len;
  };
  std::vector<Address> addresses;
  bool is_unix = false;
  sockaddr_un unix_addr;
  socklen_t unix_len = 0;
};

// { addresses: string[], port } | { path }. TypeError when it is neither.
Target TargetArgument(Napi::Env env, const Napi::Value& value) {
  const char* shape = "target must be { addresses: string[], port: number } or { path: string }";
  if (!value.IsObject()) ThrowType(env, shape);
  Napi::Object obj = value.As<Napi::Object>();
  Target target;
  Napi::Value path = obj.Get("path");
  if (!path.IsUndefined()) {
    if (!path.IsString()) ThrowType(env, shape);
    std::string p = path.As<Napi::String>().Utf8Value();
    memset(&target.unix_addr, 0, sizeof(target.unix_addr));
    if (p.empty() || p.size() >= sizeof(target.unix_addr.sun_path) || p.find('\0') != std::string::npos) {
      ThrowType(env, "target.path must be a non-empty path that fits a Unix socket address");
    }
    target.is_unix = true;
    target.unix_addr.sun_family = AF_UNIX;
    memcpy(target.unix_addr.sun_path, p.data(), p.size());
    target.unix_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size() + 1);
    return target;
  }
  Napi::Value addresses = obj.Get("addresses");
  if (!addresses.IsArray()) ThrowType(env, shape);
  double port;
  if (!IsInteger(obj.Get("port"), 1, 65535, &port)) ThrowType(env, "target.port must be an integer 1-65535");
  Napi::Array list = addresses.As<Napi::Array>();
  if (list.Length() == 0 || list.Length() > kMaxAddresses) {
    ThrowType(env, "target.addresses must hold 1-" + std::to_string(kMaxAddresses) + " addresses");
  }
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    if (!item.IsString()) ThrowType(env, "target.addresses must be IPv4 or IPv6 literals");
    std::string text = item.As<Napi::String>().Utf8Value();
    Target::Address address;
    address.len = ParseAddress(text, static_cast<uint16_t>(port), &address.addr);
    if (address.len == 0) ThrowType(env, "target address '" + text + "' is not an IPv4 or IPv6 literal");
    target.addresses.push_back(address);
  }
  return target;
}

// bindTcp(address, port) -> fd: a non-blocking, close-on-exec TCP socket listening on address:port.
Napi::Value BindTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) ThrowType(env, "bindTcp() takes 2 arguments: address, port");
  std::string text = AddressArgument(info, 0);
  uint16_t port = PortArgument(info, 1, 0);
  sockaddr_storage addr;
  socklen_t len = ParseAddress(text, port, &addr);
  if (len == 0) ThrowType(env, "address must be an IPv4 or IPv6 literal, got '" + text + "'");
  UniqueFd sock(socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) throw SysError(env, errno, "socket", Describe(addr));
  // What libuv does for every TCP bind: a port in TIME_WAIT can be listened on again at once.
  int one = 1;
  if (setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    throw SysError(env, errno, "setsockopt", Describe(addr));
  }
  if (bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    throw SysError(env, errno, "bind", Describe(addr));
  }
  if (listen(sock.get(), 511) != 0) throw SysError(env, errno, "listen", Describe(addr));
  Napi::Number fd = Napi::Number::New(env, sock.get());
  sock.release();
  return fd;
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Closes with a TCP RST (SO_LINGER {1, 0}); a Unix socket has no RST and is just closed.
void ResetAndClose(int fd) {
  linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  UniqueFd(fd).reset();
}

int SocketError(int fd) {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

class TcpRelay;

// Bytes one way: read from one side, written to the other. `buf` holds what the other side has not taken yet,
// and exists only while it does.
struct Flow {
  uint8_t* buf = nullptr;
  uint32_t off = 0;
  uint32_t len = 0;
  bool eof = false;   // the source sent FIN
  bool shut = false;  // ...and it was passed on: shutdown(destination, SHUT_WR)
};

enum class State : uint8_t { kConnecting, kWaiting, kRelaying };

// One forwarded connection. Side 0 is the client, side 1 the target; flow[s] reads side s and writes side
// 1-s.
struct Conn {
  TcpRelay* relay = nullptr;
  Conn* prev = nullptr;
  Conn* next = nullptr;
  int fd[2] = {-1, -1};
  uint32_t mask[2] = {0, 0};  // epoll interest as registered
  bool registered[2] = {false, false};
  State state = State::kConnecting;
  bool dead = false;
  uint8_t address = 0;  // which target address is being tried
  Flow flow[2];
  uint64_t deadline = 0;          // of connecting (uv_now ms)
  uint64_t attempt_deadline = 0;  // of the current address: `deadline`, or sooner if another is left to try
  uint64_t retry_at = 0;          // while kWaiting
};

// Memory: the counters and the connection list live in this object (freed when JavaScript's object is
// collected); the two uv handles are their own allocations, freed in their uv_close callbacks. Connections
// are freed at once, except during event dispatch, where they are freed at its end (later events of the same
// epoll_wait batch may still name them). close() closes every fd synchronously.
class TcpRelay : public Napi::ObjectWrap<TcpRelay> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "TcpRelay",
        {InstanceMethod("stats", &TcpRelay::Stats), InstanceMethod("setTarget", &TcpRelay::SetTarget),
         InstanceMethod("close", &TcpRelay::CloseMethod)});
  }

  // new TcpRelay(listenFd, target, options). The relay owns `listenFd` only if this returns: every throw
  // below leaves it open, for the caller to close.
  explicit TcpRelay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TcpRelay>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 3) ThrowType(env, "TcpRelay takes 3 arguments: listenFd, target, options");
    int fd = FdArgument(info, 0, "listenFd");
    target_ = TargetArgument(env, info[1]);
    if (!info[2].IsObject()) {
      ThrowType(env, "options must be { connectTimeoutMs, maxConnections, retryRefusedMs }");
    }
    Napi::Object options = info[2].As<Napi::Object>();
    Napi::Value timeout = options.Get("connectTimeoutMs");
    double t = timeout.IsNumber() ? timeout.As<Napi::Number>().DoubleValue() : -1;
    if (!(t > 0 && t <= 2147483647)) ThrowType(env, "options.connectTimeoutMs must be > 0 and <= 2147483647");
    connect_timeout_ms_ = static_cast<uint64_t>(std::ceil(t));
    double max;
    if (!IsInteger(options.Get("maxConnections"), 1, 2147483647, &max)) {
      ThrowType(env, "options.maxConnections must be an integer 1-2147483647");
    }
    max_connections_ = static_cast<uint64_t>(max);
    Napi::Value retry = options.Get("retryRefusedMs");
    double r = retry.IsNumber() ? retry.As<Napi::Number>().DoubleValue() : -1;
    if (!(r >= 0 && r <= 2147483647)) ThrowType(env, "options.retryRefusedMs must be >= 0 and <= 2147483647");
    retry_ms_ = static_cast<uint64_t>(std::ceil(r));

    const std::string what = "fd " + std::to_string(fd);
    CheckSocketType(env, fd, SOCK_STREAM, "stream", what);
    int listening = 0;
    socklen_t listening_len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &listening_len) != 0) {
      throw SysError(env, errno, "getsockopt", what);
    }
    if (!listening) throw SysError(env, EINVAL, "getsockopt", what + " is not listening");
    SetNonBlocking(env, fd, what);

    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    if (!ep.valid()) throw SysError(env, errno, "epoll_create1", what);
    epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = kTagListener;
    if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw SysError(env, errno, "epoll_ctl", what);
    // The spare fd of the EMFILE trick: closed to make room to accept (and close) what cannot be served.
    UniqueFd reserve(open("/", O_RDONLY | O_CLOEXEC));

    if (napi_get_uv_event_loop(env, &loop_) != napi_ok || loop_ == nullptr) {
      throw Napi::Error::New(env, "TcpRelay: no libuv event loop");
    }
    poll_ = StartPoll(env, loop_, ep.get(), OnPoll, this, what);
    // Nothing below throws: from here on the relay owns the fd.
    listen_fd_ = fd;
    ep_ = ep.release();
    reserve_ = reserve.release();
    timer_ = NewTimer(loop_, this);
    cleanup_.Add(env, this);
  }

  // Collected without close(): close now.
  ~TcpRelay() override { Close(); }

 private:
  friend class CleanupHook<TcpRelay>;

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("active", Napi::Number::New(env, static_cast<double>(active_)));
    out.Set("total", Napi::Number::New(env, static_cast<double>(total_)));
    out.Set("toTarget", Napi::Number::New(env, static_cast<double>(to_target_)));
    out.Set("fromTarget", Napi::Number::New(env, static_cast<double>(from_target_)));
    out.Set("errors", Napi::Number::New(env, static_cast<double>(errors_.count())));
    out.Set("lastError", errors_.Last(env));
    return out;
  }

  // setTarget(target): connections accepted from now on go there; open ones keep theirs.
  Napi::Value SetTarget(const Napi::CallbackInfo& info) {
    if (info.Length() != 1) ThrowType(info.Env(), "setTarget() takes 1 argument: target");
    target_ = TargetArgument(info.Env(), info[0]);
    return info.Env().Undefined();
  }

  Napi::Value CloseMethod(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  // Idempotent and synchronous: every fd is closed when this returns; handle memory goes in uv_close
  // callbacks.
  void Close() {
    if (closed_) return;
    closed_ = true;
    // As net.Socket.destroy() does when a forward stops: both sides closed, no reset.
    while (head_ != nullptr) Finish(head_, false, false);
    FreeDead();
    if (poll_ != nullptr) {
      // uv_close stops the handle (taking the epoll fd out of Node's epoll) before the fd is closed.
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreeHandle<uv_poll_t>);
      poll_ = nullptr;
    }
    UniqueFd(ep_).reset();
    ep_ = -1;
    UniqueFd(listen_fd_).reset();
    listen_fd_ = -1;
    UniqueFd(reserve_).reset();
    reserve_ = -1;
    if (timer_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), FreeHandle<uv_timer_t>);
      timer_ = nullptr;
    }
    cleanup_.Remove();
  }

  // ---- events ----

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<TcpRelay*>(handle->data);
    if (status < 0) {
      // POLLERR on an epoll fd does not happen; should it, libuv stopped the handle: poll again.
      if (uv_poll_start(handle, UV_READABLE, OnPoll) != 0) return;
    }
    self->Dispatch();
  }

  void Dispatch() {
    epoll_event events[kMaxEvents];
    const uint64_t moved_before = to_target_ + from_target_;
    bool spent = false;
    for (int round = 0; round < kMaxRounds && !closed_ && !spent; ++round) {
      int n = epoll_wait(ep_, events, kMaxEvents, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (int i = 0; i < n && !spent; ++i) {
        uint64_t tag = events[i].data.u64 & 3;
        if (tag == kTagListener) {
          Accept();
          continue;
        }
        Conn* conn = reinterpret_cast<Conn*>(events[i].data.u64 & ~uint64_t{3});
        if (conn->dead) continue;
        OnSocket(conn, tag == kTagClient ? 0 : 1, events[i].events);
        // Events not handled now are reported again by the next epoll_wait.
        spent = to_target_ + from_target_ - moved_before >= kMaxBytesPerCallback;
      }
      FreeDead();
      if (n < kMaxEvents) break;
    }
  }

  void Accept() {
    for (int i = 0; i < kMaxAccepts; ++i) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int error = errno;
        if (error == EINTR || error == ECONNABORTED) continue;
        if (error == EAGAIN || error == EWOULDBLOCK) return;
        errors_.RecordErrno(error, "accept");
        if (error == EMFILE || error == ENFILE) Shed();
        return;
      }
      if (active_ >= max_connections_) {
        UniqueFd(fd).reset();
        errors_.Record("EMAXCONN", 0, "");
        continue;
      }
      Open(fd);
    }
  }

  // Out of fds: the pending connections cannot be served, and while they are queued the listener stays
  // readable. Close the spare fd, accept and close them all, take the spare again (libuv's EMFILE trick).
  void Shed() {
    if (reserve_ >= 0) {
      UniqueFd(reserve_).reset();
      reserve_ = -1;
      // Bounded, so a storm of connections cannot hold the loop; the listener stays readable for the rest.
      for (int i = 0; i < kMaxShed; ++i) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
          UniqueFd(fd).reset();
          continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;
      }
      reserve_ = open("/", O_RDONLY | O_CLOEXEC);
    }
    if (reserve_ < 0) {
      // No spare to give up: stop listening for a moment rather than spin on a readable listener.
      epoll_event ev;
      memset(&ev, 0, sizeof(ev));
      ev.data.u64 = kTagListener;
      if (epoll_ctl(ep_, EPOLL_CTL_MOD, listen_fd_, &ev) == 0) {
        paused_until_ = uv_now(loop_) + kPauseMs;
        ArmTimer(paused_until_);
      }
    }
  }

  void Open(int fd) {
    SetNoDelay(fd);
    Conn* conn = new (std::nothrow) Conn();
    if (conn == nullptr) {
      errors_.RecordErrno(ENOMEM, "malloc");
      ResetAndClose(fd);
      return;
    }
    conn->relay = this;
    conn->fd[0] = fd;
    conn->next = head_;
    if (head_ != nullptr) head_->prev = conn;
    head_ = conn;
    active_ += 1;
    total_ += 1;
    conn->deadline = uv_now(loop_) + connect_timeout_ms_;
    Connect(conn);
  }

  // Starts connecting to the target address `conn->address` (IP) or the Unix socket.
  void Connect(Conn* conn) {
    conn->state = State::kConnecting;
    const sockaddr* addr;
    socklen_t len;
    if (target_.is_unix) {
      addr = reinterpret_cast<const sockaddr*>(&target_.unix_addr);
      len = target_.unix_len;
    } else {
      if (conn->address >= target_.addresses.size()) conn->address = 0;  // setTarget shortened the list
      const Target::Address& a = target_.addresses[conn->address];
      addr = reinterpret_cast<const sockaddr*>(&a.addr);
      len = a.len;
    }
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Fail(conn, errno, "socket");
      return;
    }
    if (!target_.is_unix) SetNoDelay(fd);
    if (connect(fd, addr, len) == 0) {
      conn->fd[1] = fd;
      Connected(conn);
      return;
    }
    int error = errno;
    if (error == EINPROGRESS || error == EINTR) {
      conn->fd[1] = fd;
      if (!Watch(conn, 1, EPOLLOUT)) return;
      // An address that drops the attempt silently must not cost the whole timeout when others are left.
      bool more = !target_.is_unix && conn->address + 1u < target_.addresses.size();
      uint64_t next = uv_now(loop_) + kAttemptMs;
      conn->attempt_deadline = more && next < conn->deadline ? next : conn->deadline;
      ArmTimer(conn->attempt_deadline);
      return;
    }
    UniqueFd(fd).reset();
    ConnectFailed(conn, error);
  }

  void ConnectFailed(Conn* conn, int error) {
    bool next_address =
        error == ECONNREFUSED || error == ENETUNREACH || error == EHOSTUNREACH || error == EADDRNOTAVAIL;
    if (!target_.is_unix && next_address && conn->address + 1u < target_.addresses.size()) {
      conn->address += 1;
      Connect(conn);
      return;
    }
    uint64_t now = uv_now(loop_);
    if (retry_ms_ > 0 && (error == ECONNREFUSED || error == ENOENT) && now + retry_ms_ < conn->deadline) {
      // A backend that is still starting refuses: the client waits for it, up to the connect deadline, unless
      // it goes away meanwhile. Nothing is read from it, so only a reset (EPOLLERR, EPOLLHUP) shows that: a
      // FIN (EPOLLRDHUP) may just end a request that is waiting to be relayed.
      conn->state = State::kWaiting;
      conn->address = 0;
      conn->retry_at = now + retry_ms_;
      if (!Watch(conn, 0, EPOLLERR | EPOLLHUP)) return;
      ArmTimer(conn->retry_at);
      return;
    }
    Fail(conn, error, "connect");
  }

  // The target could not be reached: counted, and the client told at once with a reset, as a refused
  // connection would be.
  void Fail(Conn* conn, int error, const char* syscall) {
    errors_.RecordErrno(error, syscall);
    Finish(conn, true, false);
  }

  void Connected(Conn* conn) {
    conn->state = State::kRelaying;
    if (!Watch(conn, 1, EPOLLIN)) return;
    Watch(conn, 0, EPOLLIN);
  }

  void OnSocket(Conn* conn, int side, uint32_t events) {
    if (conn->state != State::kRelaying) {
      if (side == 0) {
        // The client went away while its target was being reached: drop both quietly.
        Finish(conn, false, false);
        return;
      }
      int error = SocketError(conn->fd[1]);
      if (error == 0 && !(events & EPOLLOUT)) error = ECONNREFUSED;
      if (error != 0) {
        Unwatch(conn, 1);
        UniqueFd(conn->fd[1]).reset();
        conn->fd[1] = -1;
        ConnectFailed(conn, error);
        return;
      }
      Connected(conn);
      return;
    }
    if (events & EPOLLERR) {
      int error = SocketError(conn->fd[side]);
      ReadError(conn, side, error != 0 ? error : ECONNRESET);
      return;
    }
    // EPOLLHUP: this side is shut both ways. It cannot be masked, so the bytes held for it are tried now (the
    // write fails with EPIPE), and if it takes none the connection ends: otherwise the HUP would come back on
    // every turn of the loop (a Unix-socket peer that shut down but keeps its fd open does this).
    const uint32_t held = conn->flow[1 - side].len;
    if ((events & (EPOLLOUT | EPOLLHUP)) && !Flush(conn, 1 - side)) return;  // bytes waiting for this side
    if ((events & (EPOLLIN | EPOLLHUP)) && !Pump(conn, side)) return;
    if ((events & EPOLLHUP) && held > 0 && conn->flow[1 - side].len == held) {
      WriteError(conn, side, EPIPE);
      return;
    }
    Update(conn);
  }

  // Moves bytes from `side` to the other. False when the connection was closed.
  bool Pump(Conn* conn, int side) {
    Flow& flow = conn->flow[side];
    if (flow.len > 0) return true;  // the destination has not taken the last read yet
    int from = conn->fd[side];
    int to = conn->fd[1 - side];
    uint8_t* scratch = Scratch();
    for (int i = 0; i < kMaxReads && !flow.eof; ++i) {
      ssize_t n = recv(from, scratch, kChunk, 0);
      if (n > 0) {
        (side == 0 ? to_target_ : from_target_) += static_cast<uint64_t>(n);
        ssize_t sent = 0;
        while (sent < n) {
          ssize_t w = send(to, scratch + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w > 0) {
            sent += w;
            continue;
          }
          if (w < 0 && errno == EINTR) continue;
          if (w == 0 || errno == EAGAIN || errno == EWOULDBLOCK) break;
          WriteError(conn, 1 - side, errno);
          return false;
        }
        if (sent < n) {
          // Keep the rest and stop reading this side until the destination drains (backpressure).
          size_t rest = static_cast<size_t>(n - sent);
          flow.buf = static_cast<uint8_t*>(malloc(rest));
          if (flow.buf == nullptr) {
            errors_.RecordErrno(ENOMEM, "malloc");
            Finish(conn, true, true);
            return false;
          }
          memcpy(flow.buf, scratch + sent, rest);
          flow.off = 0;
          flow.len = static_cast<uint32_t>(rest);
          return true;
        }
        if (static_cast<size_t>(n) < kChunk) break;  // most likely drained: epoll says when there is more
        continue;
      }
      if (n == 0) {
        flow.eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      ReadError(conn, side, errno);
      return false;
    }
    return PassFin(conn, side);
  }

  // Writes what flow `side` holds to the other side. False when the connection was closed.
  bool Flush(Conn* conn, int side) {
    Flow& flow = conn->flow[side];
    int to = conn->fd[1 - side];
    while (flow.len > 0) {
      ssize_t w = send(to, flow.buf + flow.off, flow.len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        flow.off += static_cast<uint32_t>(w);
        flow.len -= static_cast<uint32_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w == 0 || errno == EAGAIN || errno == EWOULDBLOCK) return true;
      WriteError(conn, 1 - side, errno);
      return false;
    }
    free(flow.buf);
    flow.buf = nullptr;
    flow.off = 0;
    return PassFin(conn, side);
  }

  // A FIN read from `side` goes on to the other side once every byte before it has (half-close).
  bool PassFin(Conn* conn, int side) {
    Flow& flow = conn->flow[side];
    if (flow.eof && flow.len == 0 && !flow.shut) {
      flow.shut = true;
      shutdown(conn->fd[1 - side], SHUT_WR);
    }
    return true;
  }

  // Reading `side` failed (ECONNRESET, mostly): the connection ends. Counted when it is the target's.
  void ReadError(Conn* conn, int side, int error) {
    if (side == 1) errors_.RecordErrno(error, "read");
    EndAfterError(conn, side, error);
  }

  // Writing to `side` failed (EPIPE, ECONNRESET): the connection ends. Counted when it is the target's.
  void WriteError(Conn* conn, int side, int error) {
    if (side == 1) errors_.RecordErrno(error, "write");
    EndAfterError(conn, side, error);
  }

  // As the net.Socket plane does: a reset on one side resets the other; any other failure closes it normally.
  void EndAfterError(Conn* conn, int side, int error) {
    bool reset = error == ECONNRESET;
    Finish(conn, side == 1 && reset, side == 0 && reset);
  }

  // Sets each side's epoll interest from the flows; closes the connection once both ways finished. False when
  // it was closed.
  bool Update(Conn* conn) {
    if (conn->flow[0].shut && conn->flow[1].shut) {
      Finish(conn, false, false);
      return false;
    }
    for (int side = 0; side < 2; ++side) {
      const Flow& in = conn->flow[side];
      const Flow& out = conn->flow[1 - side];
      uint32_t mask =
          (!in.eof && in.len == 0 ? uint32_t{EPOLLIN} : 0u) | (out.len > 0 ? uint32_t{EPOLLOUT} : 0u);
      if (!Watch(conn, side, mask)) return false;
    }
    return true;
  }

  // Registers `side` in the epoll with `mask` (a no-op when it is so already). False (the connection closed)
  // when epoll refuses, which only lack of memory makes it do. A side with nothing to wait for is taken out
  // of the epoll: EPOLLHUP cannot be masked, and a socket the peer shut both ways (its last bytes still
  // waiting for the other side to drain) would otherwise be reported on every turn of the loop.
  bool Watch(Conn* conn, int side, uint32_t mask) {
    if (mask == 0) {
      Unwatch(conn, side);
      return true;
    }
    if (conn->registered[side] && conn->mask[side] == mask) return true;
    epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = mask;
    ev.data.u64 = reinterpret_cast<uint64_t>(conn) | (side == 0 ? kTagClient : kTagTarget);
    int op = conn->registered[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep_, op, conn->fd[side], &ev) != 0) {
      errors_.RecordErrno(errno, "epoll_ctl");
      Finish(conn, true, true);
      return false;
    }
    conn->registered[side] = true;
    conn->mask[side] = mask;
    return true;
  }

  // Takes `side` out of the epoll before its fd is closed: a forked child may hold the socket open a moment
  // longer, and the epoll would keep reporting it, naming a freed connection.
  void Unwatch(Conn* conn, int side) {
    if (!conn->registered[side]) return;
    epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    if (ep_ >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, conn->fd[side], &ev);
    conn->registered[side] = false;
  }

  // Closes both sides (with a reset where asked) and retires the connection.
  void Finish(Conn* conn, bool reset_client, bool reset_target) {
    if (conn->dead) return;
    conn->dead = true;
    for (int side = 0; side < 2; ++side) {
      if (conn->fd[side] < 0) continue;
      if (!closed_) Unwatch(conn, side);
      if (side == 0 ? reset_client : reset_target) {
        ResetAndClose(conn->fd[side]);
      } else {
        UniqueFd(conn->fd[side]).reset();
      }
      conn->fd[side] = -1;
      free(conn->flow[side].buf);
      conn->flow[side].buf = nullptr;
    }
    if (conn->prev != nullptr) conn->prev->next = conn->next;
    if (conn->next != nullptr) conn->next->prev = conn->prev;
    if (head_ == conn) head_ = conn->next;
    active_ -= 1;
    conn->next = dead_;
    dead_ = conn;
  }

  void FreeDead() {
    while (dead_ != nullptr) {
      Conn* next = dead_->next;
      delete dead_;
      dead_ = next;
    }
  }

  // ---- the timer: connect deadlines, retries, the paused listener ----

  void ArmTimer(uint64_t due) {
    if (timer_ == nullptr) return;
    if (timer_armed_ && timer_due_ <= due) return;
    uint64_t now = uv_now(loop_);
    uv_timer_start(timer_, OnTimer, due > now ? due - now : 0, 0);
    timer_armed_ = true;
    timer_due_ = due;
  }

  static void OnTimer(uv_timer_t* timer) {
    auto* self = static_cast<TcpRelay*>(timer->data);
    self->timer_armed_ = false;
    self->Tick();
  }

  void Tick() {
    uint64_t now = uv_now(loop_);
    if (paused_until_ != 0 && paused_until_ <= now) {
      paused_until_ = 0;
      epoll_event ev;
      memset(&ev, 0, sizeof(ev));
      ev.events = EPOLLIN;
      ev.data.u64 = kTagListener;
      epoll_ctl(ep_, EPOLL_CTL_MOD, listen_fd_, &ev);
    }
    for (Conn* conn = head_; conn != nullptr;) {
      Conn* next = conn->next;  // `conn` may be finished below; no other connection is
      if (conn->state != State::kRelaying) {
        if (conn->deadline <= now) {
          // As net.Socket's connect timeout: counted, the client reset.
          Fail(conn, ETIMEDOUT, "connect");
        } else if (conn->state == State::kWaiting && conn->retry_at <= now) {
          Connect(conn);
        } else if (conn->state == State::kConnecting && conn->attempt_deadline <= now) {
          // This address did not answer in time: give up on it and try the next.
          Unwatch(conn, 1);
          UniqueFd(conn->fd[1]).reset();
          conn->fd[1] = -1;
          conn->address += 1;
          Connect(conn);
        }
      }
      conn = next;
    }
    FreeDead();
    uint64_t due = paused_until_ != 0 ? paused_until_ : UINT64_MAX;
    for (Conn* conn = head_; conn != nullptr; conn = conn->next) {
      if (conn->state == State::kConnecting && conn->attempt_deadline < due) due = conn->attempt_deadline;
      if (conn->state == State::kWaiting) {
        uint64_t at = conn->retry_at < conn->deadline ? conn->retry_at : conn->deadline;
        if (at < due) due = at;
      }
    }
    if (due != UINT64_MAX) ArmTimer(due);
  }

  uv_loop_t* loop_ = nullptr;
  int listen_fd_ = -1;  // owned once the constructor returned
  int ep_ = -1;
  int reserve_ = -1;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  bool timer_armed_ = false;
  uint64_t timer_due_ = 0;
  uint64_t paused_until_ = 0;
  bool closed_ = false;
  CleanupHook<TcpRelay> cleanup_;
  Target target_;
  uint64_t connect_timeout_ms_ = 0;
  uint64_t max_connections_ = 0;
  uint64_t retry_ms_ = 0;
  Conn* head_ = nullptr;  // open connections
  Conn* dead_ = nullptr;  // finished, to be freed after the current dispatch
  uint64_t active_ = 0;
  uint64_t total_ = 0;
  uint64_t to_target_ = 0;
  uint64_t from_target_ = 0;
  ErrorLog errors_;
};

}  // namespace

void InitTcpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpRelayAvailable", Napi::Boolean::New(env, true));
  exports.Set("bindTcp", Napi::Function::New(env, BindTcp, "bindTcp"));
  exports.Set("TcpRelay", TcpRelay::Define(env));
}

#endif  // __linux__

}  // namespace berth
