// The native TCP relay's connection state machine (tcp_relay.h). Used by app/engine/tcp-native.ts through
// tcp_relay_napi.cc; net.Socket in app/engine/tcp-node.ts is the fallback.
//
// net.Socket costs a handle, a JS object graph and a JS callback per event, per connection. The relay keeps a
// small struct per connection and no buffer while it is idle: each read goes through one per-thread 64 KiB
// scratch buffer straight into a write to the other side, and only the bytes the other side could not take
// yet are kept (on the heap, until flushed; the source is not read meanwhile: that is the backpressure).
//
// Event handling: one epoll instance per relay (EpollSet) holds the listener and every connection's two
// sockets; Node's loop polls that epoll fd with a single uv_poll_t. (A uv_poll_t per socket would cost
// libuv's per-handle checks, three system calls at each uv_poll_init and one more at each stop, for every
// connection.) One timer per relay drives the connect deadlines and the retries of a refused target.
//
// Every fd is close-on-exec from creation (SOCK_CLOEXEC, accept4, EPOLL_CLOEXEC, O_CLOEXEC): a backend Berth
// spawns must never inherit a listener or a connection (docs/forwarding.md).
#include "tcp_relay.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <memory>
#include <new>
#include <string>

namespace berth {

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
constexpr uint64_t kPauseMs = 100;  // the listener rests this long when an fd limit cannot be shed
constexpr int kMaxShed = 1024;      // connections shed per turn when out of fds
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

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Closes with a TCP RST (SO_LINGER {1, 0}); a Unix socket has no RST and is just closed.
void ResetAndClose(UniqueFd* fd) {
  linger l = {1, 0};
  setsockopt(fd->get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  fd->reset();
}

int SocketError(int fd) {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

// Bytes one way: read from one side, written to the other. `buf` holds what the other side has not taken
// yet, and exists only while it does.
struct Flow {
  std::unique_ptr<uint8_t[]> buf;
  uint32_t off = 0;
  uint32_t len = 0;
  bool eof = false;   // the source sent FIN
  bool shut = false;  // ...and it was passed on: shutdown(destination, SHUT_WR)
};

enum class State : uint8_t { kConnecting, kWaiting, kRelaying };

}  // namespace

// One forwarded connection. Side 0 is the client, side 1 the target; flow[s] reads side s and writes side
// 1-s.
struct TcpRelay::Conn {
  std::list<Conn>::iterator self;  // its place in live_ or dead_
  UniqueFd fd[2];
  EpollWatch watch[2];
  State state = State::kConnecting;
  bool dead = false;
  uint8_t address = 0;  // which target address is being tried
  Flow flow[2];
  uint64_t deadline = 0;          // of connecting (loop ms)
  uint64_t attempt_deadline = 0;  // of the current address: `deadline`, or sooner if another is left to try
  uint64_t retry_at = 0;          // while kWaiting
};

TcpRelay::TcpRelay(TcpTarget target, TcpRelayOptions options, Timer* timer)
    : target_(std::move(target)), options_(options), timer_(timer) {}

TcpRelay::~TcpRelay() { Close(); }

OsError TcpRelay::Open() {
  if (int error = epoll_.Open()) return {error, "epoll_create1", "a TCP relay"};
  return {};
}

OsError TcpRelay::Adopt(int fd) {
  const std::string what = "fd " + std::to_string(fd);
  if (OsError e = CheckSocketType(fd, SOCK_STREAM, "stream", what)) return e;
  int listening = 0;
  socklen_t listening_len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &listening_len) != 0) {
    return {errno, "getsockopt", what};
  }
  if (!listening) return {EINVAL, "getsockopt", what + " is not listening"};
  if (!claim_.Take(fd)) return {EEXIST, "TcpRelay", what + " is the listener of another relay already"};
  OsError e = SetNonBlocking(fd, what);
  if (!e) {
    if (int error = epoll_.Watch(fd, &listener_watch_, EPOLLIN, kTagListener)) e = {error, "epoll_ctl", what};
  }
  if (e) {
    claim_.Drop();
    return e;
  }
  // From here on the relay owns the fd.
  listener_.reset(fd);
  reserve_.reset(open("/", O_RDONLY | O_CLOEXEC));
  return {};
}

// As net.Socket.destroy() does when a forward stops: both sides closed, no reset.
void TcpRelay::Close() {
  if (closed_) return;
  closed_ = true;
  while (!live_.empty()) Finish(&live_.front(), false, false);
  dead_.clear();
  epoll_.Close();
  listener_.reset();
  claim_.Drop();
  reserve_.reset();
}

// ---- events ----

void TcpRelay::OnReadable(uint64_t now) {
  now_ = now;
  Dispatch();
}

void TcpRelay::Dispatch() {
  epoll_event events[kMaxEvents];
  const uint64_t moved_before = stats_.to_target + stats_.from_target;
  bool spent = false;
  for (int round = 0; round < kMaxRounds && !closed_ && !spent; ++round) {
    int n = epoll_.Ready(events, kMaxEvents);
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
      spent = stats_.to_target + stats_.from_target - moved_before >= kMaxBytesPerCallback;
    }
    dead_.clear();
    if (n < kMaxEvents) break;
  }
}

void TcpRelay::Accept() {
  for (int i = 0; i < kMaxAccepts; ++i) {
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      int error = errno;
      if (error == EINTR || error == ECONNABORTED) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      // Out of fds: counted per connection shed, not here (issue 19: one count stood for a whole batch).
      if (error == EMFILE || error == ENFILE) {
        Shed(error);
        return;
      }
      errors_.RecordErrno(error, "accept");
      return;
    }
    if (stats_.active >= options_.max_connections) {
      errors_.RecordCode("EMAXCONN");
      continue;  // `fd` closes
    }
    OpenConnection(std::move(fd));
  }
}

// Out of fds (`error`: EMFILE or ENFILE): the pending connections cannot be served, and while they are queued
// the listener stays readable. Close the spare fd, accept and close them, take the spare again (libuv's
// EMFILE trick). Each connection shed is counted as that error of accept(), so the forward's error count says
// how many clients were turned away.
void TcpRelay::Shed(int error) {
  // The spare may be missing since an earlier shed could not take it back: try again first.
  if (!reserve_.valid()) reserve_.reset(open("/", O_RDONLY | O_CLOEXEC));
  if (reserve_.valid()) {
    reserve_.reset();
    // Bounded, so a storm of connections cannot hold the loop; the listener stays readable for the rest.
    for (int i = 0; i < kMaxShed; ++i) {
      UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd.valid()) {
        errors_.RecordErrno(error, "accept");
        continue;  // closed at once
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    reserve_.reset(open("/", O_RDONLY | O_CLOEXEC));
  }
  if (!reserve_.valid()) {
    // No spare to give up: stop listening for a moment rather than spin on a readable listener. The queued
    // connections are served or shed (and counted) once it listens again.
    epoll_.Unwatch(listener_.get(), &listener_watch_);
    paused_until_ = now_ + kPauseMs;
    ArmTimer(paused_until_);
  }
}

void TcpRelay::OpenConnection(UniqueFd fd) {
  SetNoDelay(fd.get());
  Conn* conn;
  try {
    live_.emplace_front();
    conn = &live_.front();
  } catch (const std::bad_alloc&) {
    errors_.RecordErrno(ENOMEM, "malloc");
    ResetAndClose(&fd);
    return;
  }
  conn->self = live_.begin();
  conn->fd[0] = std::move(fd);
  stats_.active += 1;
  stats_.total += 1;
  conn->deadline = now_ + options_.connect_timeout_ms;
  Connect(conn);
}

// Starts connecting to the target address `conn->address` (IP) or the Unix socket.
void TcpRelay::Connect(Conn* conn) {
  conn->state = State::kConnecting;
  const sockaddr* addr;
  socklen_t len;
  if (target_.is_unix) {
    addr = reinterpret_cast<const sockaddr*>(&target_.unix_addr);
    len = target_.unix_len;
  } else {
    if (conn->address >= target_.addresses.size()) conn->address = 0;  // SetTarget shortened the list
    const TcpTarget::Address& a = target_.addresses[conn->address];
    addr = reinterpret_cast<const sockaddr*>(&a.addr);
    len = a.len;
  }
  UniqueFd sock(socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    Fail(conn, errno, "socket");
    return;
  }
  if (!target_.is_unix) SetNoDelay(sock.get());
  if (connect(sock.get(), addr, len) == 0) {
    conn->fd[1] = std::move(sock);
    Connected(conn);
    return;
  }
  int error = errno;
  if (error == EINPROGRESS || error == EINTR) {
    conn->fd[1] = std::move(sock);
    if (!Watch(conn, 1, EPOLLOUT)) return;
    // An address that drops the attempt silently must not cost the whole timeout when others are left.
    bool more = !target_.is_unix && conn->address + 1u < target_.addresses.size();
    uint64_t next = now_ + kAttemptMs;
    conn->attempt_deadline = more && next < conn->deadline ? next : conn->deadline;
    ArmTimer(conn->attempt_deadline);
    return;
  }
  sock.reset();
  ConnectFailed(conn, error);
}

void TcpRelay::ConnectFailed(Conn* conn, int error) {
  bool next_address =
      error == ECONNREFUSED || error == ENETUNREACH || error == EHOSTUNREACH || error == EADDRNOTAVAIL;
  if (!target_.is_unix && next_address && conn->address + 1u < target_.addresses.size()) {
    conn->address += 1;
    Connect(conn);
    return;
  }
  const uint64_t retry_ms = options_.retry_refused_ms;
  if (retry_ms > 0 && (error == ECONNREFUSED || error == ENOENT) && now_ + retry_ms < conn->deadline) {
    // A backend that is still starting refuses: the client waits for it, up to the connect deadline, unless
    // it goes away meanwhile. Nothing is read from it, so only a reset (EPOLLERR, EPOLLHUP) shows that: a
    // FIN (EPOLLRDHUP) may just end a request that is waiting to be relayed.
    conn->state = State::kWaiting;
    conn->address = 0;
    conn->retry_at = now_ + retry_ms;
    if (!Watch(conn, 0, EPOLLERR | EPOLLHUP)) return;
    ArmTimer(conn->retry_at);
    return;
  }
  Fail(conn, error, "connect");
}

// The target could not be reached: counted, and the client told at once with a reset, as a refused
// connection would be.
void TcpRelay::Fail(Conn* conn, int error, const char* syscall) {
  errors_.RecordErrno(error, syscall);
  Finish(conn, true, false);
}

void TcpRelay::Connected(Conn* conn) {
  conn->state = State::kRelaying;
  if (!Watch(conn, 1, EPOLLIN)) return;
  Watch(conn, 0, EPOLLIN);
}

void TcpRelay::OnSocket(Conn* conn, int side, uint32_t events) {
  if (conn->state != State::kRelaying) {
    if (side == 0) {
      // The client went away while its target was being reached: drop both quietly.
      Finish(conn, false, false);
      return;
    }
    int error = SocketError(conn->fd[1].get());
    if (error == 0 && !(events & EPOLLOUT)) error = ECONNREFUSED;
    if (error != 0) {
      Abandon(conn);
      ConnectFailed(conn, error);
      return;
    }
    Connected(conn);
    return;
  }
  if (events & EPOLLERR) {
    int error = SocketError(conn->fd[side].get());
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
bool TcpRelay::Pump(Conn* conn, int side) {
  Flow& flow = conn->flow[side];
  if (flow.len > 0) return true;  // the destination has not taken the last read yet
  const int from = conn->fd[side].get();
  const int to = conn->fd[1 - side].get();
  uint8_t* scratch = Scratch();
  for (int i = 0; i < kMaxReads && !flow.eof; ++i) {
    ssize_t n = recv(from, scratch, kChunk, 0);
    if (n > 0) {
      (side == 0 ? stats_.to_target : stats_.from_target) += static_cast<uint64_t>(n);
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
        flow.buf.reset(new (std::nothrow) uint8_t[rest]);
        if (!flow.buf) {
          errors_.RecordErrno(ENOMEM, "malloc");
          Finish(conn, true, true);
          return false;
        }
        memcpy(flow.buf.get(), scratch + sent, rest);
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
bool TcpRelay::Flush(Conn* conn, int side) {
  Flow& flow = conn->flow[side];
  const int to = conn->fd[1 - side].get();
  while (flow.len > 0) {
    ssize_t w = send(to, flow.buf.get() + flow.off, flow.len, MSG_NOSIGNAL | MSG_DONTWAIT);
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
  flow.buf.reset();
  flow.off = 0;
  return PassFin(conn, side);
}

// A FIN read from `side` goes on to the other side once every byte before it has (half-close).
bool TcpRelay::PassFin(Conn* conn, int side) {
  Flow& flow = conn->flow[side];
  if (flow.eof && flow.len == 0 && !flow.shut) {
    flow.shut = true;
    shutdown(conn->fd[1 - side].get(), SHUT_WR);
  }
  return true;
}

// Reading `side` failed (ECONNRESET, mostly): the connection ends. Counted when it is the target's.
void TcpRelay::ReadError(Conn* conn, int side, int error) {
  if (side == 1) errors_.RecordErrno(error, "read");
  EndAfterError(conn, side, error);
}

// Writing to `side` failed (EPIPE, ECONNRESET): the connection ends. Counted when it is the target's.
void TcpRelay::WriteError(Conn* conn, int side, int error) {
  if (side == 1) errors_.RecordErrno(error, "write");
  EndAfterError(conn, side, error);
}

// As the net.Socket plane does: a reset on one side resets the other; any other failure closes it normally.
void TcpRelay::EndAfterError(Conn* conn, int side, int error) {
  bool reset = error == ECONNRESET;
  Finish(conn, side == 1 && reset, side == 0 && reset);
}

// Sets each side's epoll interest from the flows; closes the connection once both ways finished. False
// when it was closed.
bool TcpRelay::Update(Conn* conn) {
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

// Registers `side` in the epoll with `mask` (see EpollSet::Watch). False (the connection closed) when epoll
// refuses.
bool TcpRelay::Watch(Conn* conn, int side, uint32_t mask) {
  uint64_t tag = reinterpret_cast<uint64_t>(conn) | (side == 0 ? kTagClient : kTagTarget);
  if (int error = epoll_.Watch(conn->fd[side].get(), &conn->watch[side], mask, tag)) {
    errors_.RecordErrno(error, "epoll_ctl");
    Finish(conn, true, true);
    return false;
  }
  return true;
}

void TcpRelay::Unwatch(Conn* conn, int side) { epoll_.Unwatch(conn->fd[side].get(), &conn->watch[side]); }

// Gives up the target socket of a connection that is still connecting (to try again, or another address).
void TcpRelay::Abandon(Conn* conn) {
  Unwatch(conn, 1);
  conn->fd[1].reset();
}

// Closes both sides (with a reset where asked) and retires the connection.
void TcpRelay::Finish(Conn* conn, bool reset_client, bool reset_target) {
  if (conn->dead) return;
  conn->dead = true;
  for (int side = 0; side < 2; ++side) {
    conn->flow[side].buf.reset();
    if (!conn->fd[side].valid()) continue;
    if (!closed_) Unwatch(conn, side);  // closing the relay closes its whole epoll
    if (side == 0 ? reset_client : reset_target) {
      ResetAndClose(&conn->fd[side]);
    } else {
      conn->fd[side].reset();
    }
  }
  stats_.active -= 1;
  dead_.splice(dead_.begin(), live_, conn->self);
}

// ---- the timer: connect deadlines, retries, the paused listener ----

void TcpRelay::ArmTimer(uint64_t due) {
  if (closed_) return;
  if (timer_armed_ && timer_due_ <= due) return;
  timer_->Start(due > now_ ? due - now_ : 0);
  timer_armed_ = true;
  timer_due_ = due;
}

void TcpRelay::OnTimer(uint64_t now) {
  now_ = now;
  timer_armed_ = false;
  Tick();
}

void TcpRelay::Tick() {
  if (closed_) return;
  if (paused_until_ != 0 && paused_until_ <= now_) {
    paused_until_ = 0;
    epoll_.Watch(listener_.get(), &listener_watch_, EPOLLIN, kTagListener);
  }
  for (auto it = live_.begin(); it != live_.end();) {
    Conn* conn = &*it++;  // `conn` may be finished below; no other connection is
    if (conn->state == State::kRelaying) continue;
    if (conn->deadline <= now_) {
      // As net.Socket's connect timeout: counted, the client reset.
      Fail(conn, ETIMEDOUT, "connect");
    } else if (conn->state == State::kWaiting && conn->retry_at <= now_) {
      Connect(conn);
    } else if (conn->state == State::kConnecting && conn->attempt_deadline <= now_) {
      // This address did not answer in time: give up on it and try the next.
      Abandon(conn);
      conn->address += 1;
      Connect(conn);
    }
  }
  dead_.clear();
  uint64_t due = paused_until_ != 0 ? paused_until_ : UINT64_MAX;
  for (const Conn& conn : live_) {
    if (conn.state == State::kConnecting && conn.attempt_deadline < due) due = conn.attempt_deadline;
    if (conn.state == State::kWaiting) {
      uint64_t at = conn.retry_at < conn.deadline ? conn.retry_at : conn.deadline;
      if (at < due) due = at;
    }
  }
  if (due != UINT64_MAX) ArmTimer(due);
}

}  // namespace berth

#endif  // __linux__
