// The native UDP relay: a UDP forward's data plane that never enters JavaScript (used by
// app/engine/udp-native.ts; node:dgram in app/engine/udp-dgram.ts is the fallback).
//
// node:dgram costs one recvmsg/sendto, a Buffer, an rinfo object, a JS callback, a send request and a
// dns.lookup per datagram. The relay instead reads up to 32 datagrams per recvmmsg and forwards a run of
// consecutive datagrams of one client with one sendmmsg, from uv_poll handles on Node's own loop.
//
// One session per client address (family, address, port, IPv6 scope): a socket of the target's family,
// connected to the target, so only the target's replies reach it; they go back to the client with sendmmsg
// on the listener. Every socket is close-on-exec from creation (SOCK_CLOEXEC): a backend Berth spawns must
// never inherit a listener or a session (../shared/DESIGN.md, "Acquiring a listener").
//
// Exports (arguments are checked in TypeScript first; these re-check and throw TypeError rather than crash):
//   udpRelayAvailable -> boolean (false and nothing else off Linux)
//   bindUdp(address, port) -> fd
//   udpLocalPort(fd) -> port
//   new UdpRelay(fd, targetAddress, targetPort, idleTimeoutMs, maxSessions)
//     .stats() .setTarget(address, port) .close()
// There are no callbacks into JavaScript: the engine polls stats().
#include "udp_relay.h"

#ifdef __linux__
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>

#include "relay_util.h"
#include "unique_fd.h"
#endif

namespace berth {

#ifndef __linux__

void InitUdpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("udpRelayAvailable", Napi::Boolean::New(env, false));
}

#else

namespace {

constexpr unsigned kBatch = 32;               // datagrams per recvmmsg / sendmmsg
constexpr size_t kBufferSize = 64 * 1024;     // > the largest UDP payload (65527 bytes over IPv6)
constexpr int kMaxReadsPerCallback = 8;       // so one busy socket cannot starve the event loop
constexpr uint64_t kMinSweepMs = 10;
constexpr uint64_t kMaxSweepMs = 5000;

// The receive buffers and message vectors, one set per thread: each thread (main, or a worker with its own
// loop) runs its relays' callbacks one at a time, so they can all share it. 2 MiB, allocated on first use.
struct Batch {
  std::unique_ptr<uint8_t[]> data{new uint8_t[kBatch * kBufferSize]};
  iovec in_iov[kBatch];
  sockaddr_storage names[kBatch];
  mmsghdr in[kBatch];
  iovec out_iov[kBatch];
  mmsghdr out[kBatch];

  uint8_t* buffer(unsigned i) { return data.get() + i * kBufferSize; }

  // Arms `in` for recvmmsg, with room for the sender's address when `with_names`.
  void PrepareReceive(bool with_names) {
    for (unsigned i = 0; i < kBatch; ++i) {
      in_iov[i].iov_base = buffer(i);
      in_iov[i].iov_len = kBufferSize;
      SetHeader(&in[i], &in_iov[i], with_names ? &names[i] : nullptr, with_names ? sizeof(names[i]) : 0);
    }
  }

  // Makes out[k] send datagram i of `in` to `name` (nullptr on a connected socket).
  void SetOut(unsigned k, unsigned i, sockaddr_storage* name, socklen_t name_len) {
    out_iov[k].iov_base = buffer(i);
    out_iov[k].iov_len = in[i].msg_len;
    SetHeader(&out[k], &out_iov[k], name, name ? name_len : 0);
  }

  // One datagram, one iovec, no control data.
  static void SetHeader(mmsghdr* msg, iovec* iov, sockaddr_storage* name, socklen_t name_len) {
    msghdr& h = msg->msg_hdr;
    h.msg_name = name;
    h.msg_namelen = name_len;
    h.msg_iov = iov;
    h.msg_iovlen = 1;
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    h.msg_flags = 0;
    msg->msg_len = 0;
  }
};

Batch& ThreadBatch() {
  thread_local std::unique_ptr<Batch> batch;
  if (!batch) batch.reset(new Batch());
  return *batch;
}

// A client's identity: family, port, IPv6 scope and address, zero-padded so it compares with memcmp.
struct ClientKey {
  uint8_t bytes[24] = {};
  bool operator==(const ClientKey& other) const { return memcmp(bytes, other.bytes, sizeof(bytes)) == 0; }
};

struct ClientKeyHash {
  size_t operator()(const ClientKey& key) const {
    uint64_t h = 14695981039346656037ull;  // FNV-1a
    for (uint8_t b : key.bytes) h = (h ^ b) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

// False for a family other than IPv4 / IPv6 (which a UDP listener cannot receive from).
bool MakeKey(const sockaddr_storage& addr, socklen_t len, ClientKey* key) {
  *key = ClientKey();
  if (addr.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    key->bytes[0] = 4;
    memcpy(key->bytes + 2, &in->sin_port, 2);
    memcpy(key->bytes + 8, &in->sin_addr, 4);
    return true;
  }
  if (addr.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    key->bytes[0] = 6;
    memcpy(key->bytes + 2, &in6->sin6_port, 2);
    memcpy(key->bytes + 4, &in6->sin6_scope_id, 4);
    memcpy(key->bytes + 8, &in6->sin6_addr, 16);
    return true;
  }
  return false;
}

// An IPv4 or IPv6 literal (the latter optionally with %scope) and a port, as a socket address. TypeError
// when either is bad. `min_port` is 0 where port 0 means "any".
socklen_t AddressArguments(const Napi::CallbackInfo& info, size_t index, double min_port, sockaddr_storage* out) {
  std::string address = AddressArgument(info, index);
  uint16_t port = PortArgument(info, index + 1, min_port);
  bool unknown_scope;
  socklen_t len = ParseAddress(address, port, out, &unknown_scope);
  if (unknown_scope) ThrowType(info.Env(), "address '" + address + "' names no known network interface");
  if (len == 0) ThrowType(info.Env(), "address must be an IPv4 or IPv6 literal, got '" + address + "'");
  return len;
}

// bindUdp(address, port) -> fd: a non-blocking, close-on-exec UDP socket bound to address:port.
Napi::Value BindUdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) ThrowType(env, "bindUdp() takes 2 arguments: address, port");
  sockaddr_storage addr;
  socklen_t len = AddressArguments(info, 0, 0, &addr);
  UniqueFd sock(socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) throw SysError(env, errno, "socket", Describe(addr));
  if (bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    throw SysError(env, errno, "bind", Describe(addr));
  }
  Napi::Number fd = Napi::Number::New(env, sock.get());
  sock.release();
  return fd;
}

// udpLocalPort(fd) -> the port the socket is bound to (0 when it is not bound).
Napi::Value UdpLocalPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) ThrowType(env, "udpLocalPort() takes 1 argument: fd");
  int fd = FdArgument(info, 0, "fd");
  sockaddr_storage addr;
  memset(&addr, 0, sizeof(addr));
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SysError(env, errno, "getsockname", "fd " + std::to_string(fd));
  }
  if (addr.ss_family == AF_INET) return Napi::Number::New(env, ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port));
  if (addr.ss_family == AF_INET6) {
    return Napi::Number::New(env, ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port));
  }
  throw SysError(env, EAFNOSUPPORT, "getsockname", "fd " + std::to_string(fd) + " is not an IPv4 or IPv6 socket");
}

class UdpRelay;

struct Session {
  uv_poll_t poll;  // poll.data points at the session
  UdpRelay* relay = nullptr;
  int fd = -1;  // connected to the target; closed by UdpRelay::CloseSession
  ClientKey key;
  sockaddr_storage client;
  socklen_t client_len = 0;
  uint64_t last_active = 0;  // uv_now() of the last datagram either way
};

void FreeSession(uv_handle_t* handle) { delete static_cast<Session*>(handle->data); }

// Memory: the relay's counters and session table live in this object (freed when JavaScript's object is
// collected); each uv handle is its own allocation, freed only in its uv_close callback, so a handle can
// outlive the relay by a loop turn. close() stops every handle and closes every fd synchronously.
class UdpRelay : public Napi::ObjectWrap<UdpRelay> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpRelay",
                       {InstanceMethod("stats", &UdpRelay::Stats), InstanceMethod("setTarget", &UdpRelay::SetTarget),
                        InstanceMethod("close", &UdpRelay::CloseMethod)});
  }

  // new UdpRelay(fd, targetAddress, targetPort, idleTimeoutMs, maxSessions). The relay owns `fd` only if this
  // returns: every throw below leaves it open, for the caller to close.
  explicit UdpRelay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpRelay>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 5) {
      ThrowType(env, "UdpRelay takes 5 arguments: fd, targetAddress, targetPort, idleTimeoutMs, maxSessions");
    }
    int fd = FdArgument(info, 0, "fd");
    target_len_ = AddressArguments(info, 1, 1, &target_);
    if (!info[3].IsNumber()) ThrowType(env, "idleTimeoutMs must be a number");
    double idle = info[3].As<Napi::Number>().DoubleValue();
    if (!(idle > 0 && idle <= 2147483647)) ThrowType(env, "idleTimeoutMs must be > 0 and <= 2147483647");
    idle_ms_ = static_cast<uint64_t>(std::ceil(idle));
    double max_sessions;
    if (!IsInteger(info[4], 1, 2147483647, &max_sessions)) {
      ThrowType(env, "maxSessions must be an integer 1-2147483647");
    }
    max_sessions_ = static_cast<size_t>(max_sessions);

    const std::string what = "fd " + std::to_string(fd);
    CheckSocketType(env, fd, SOCK_DGRAM, "datagram", what);
    sockaddr_storage local;
    memset(&local, 0, sizeof(local));
    socklen_t local_len = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
      throw SysError(env, errno, "getsockname", what);
    }
    if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
      throw SysError(env, EAFNOSUPPORT, "getsockname", what + " is not an IPv4 or IPv6 socket");
    }
    if (ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port) == 0) {  // sin_port and sin6_port coincide
      throw SysError(env, EINVAL, "getsockname", what + " is not bound");
    }
    SetNonBlocking(env, fd, what);

    if (napi_get_uv_event_loop(env, &loop_) != napi_ok || loop_ == nullptr) {
      throw Napi::Error::New(env, "UdpRelay: no libuv event loop");
    }
    listener_ = StartPoll(env, loop_, fd, OnListener, this, what);
    // Nothing below throws: from here on the relay owns the fd.
    fd_ = fd;
    timer_ = NewTimer(loop_, this);
    uint64_t every = idle_ms_ / 4;
    if (every < kMinSweepMs) every = kMinSweepMs;
    if (every > kMaxSweepMs) every = kMaxSweepMs;
    uv_timer_start(timer_, OnSweep, every, every);
    cleanup_.Add(env, this);
  }

  // Collected without close(): close now.
  ~UdpRelay() override { Close(); }

 private:
  friend class CleanupHook<UdpRelay>;

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("toTarget", Napi::Number::New(env, static_cast<double>(to_target_)));
    out.Set("fromTarget", Napi::Number::New(env, static_cast<double>(from_target_)));
    out.Set("datagramsToTarget", Napi::Number::New(env, static_cast<double>(datagrams_to_target_)));
    out.Set("datagramsFromTarget", Napi::Number::New(env, static_cast<double>(datagrams_from_target_)));
    out.Set("active", Napi::Number::New(env, static_cast<double>(sessions_.size())));
    out.Set("total", Napi::Number::New(env, static_cast<double>(total_)));
    out.Set("errors", Napi::Number::New(env, static_cast<double>(errors_.count())));
    out.Set("dropped", Napi::Number::New(env, static_cast<double>(dropped_)));
    out.Set("lastError", errors_.Last(env));
    return out;
  }

  // setTarget(address, port): sessions opened from now on connect there; open ones keep their target.
  Napi::Value SetTarget(const Napi::CallbackInfo& info) {
    if (info.Length() != 2) ThrowType(info.Env(), "setTarget() takes 2 arguments: address, port");
    sockaddr_storage target;
    socklen_t len = AddressArguments(info, 0, 1, &target);
    target_ = target;
    target_len_ = len;
    return info.Env().Undefined();
  }

  Napi::Value CloseMethod(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  // Idempotent and synchronous: every fd is closed when this returns; handle memory goes in uv_close callbacks.
  void Close() {
    if (closed_) return;
    closed_ = true;
    for (auto& entry : sessions_) CloseSession(entry.second);
    sessions_.clear();
    if (listener_ != nullptr) {
      // uv_close stops the handle (uv_poll_stop, which takes the fd out of epoll) before the fd is closed, and
      // nothing runs on this thread in between that could reuse the fd number.
      uv_poll_stop(listener_);
      uv_close(reinterpret_cast<uv_handle_t*>(listener_), FreeHandle<uv_poll_t>);
      listener_ = nullptr;
    }
    UniqueFd(fd_).reset();
    fd_ = -1;
    if (timer_ != nullptr) {
      uv_timer_stop(timer_);
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), FreeHandle<uv_timer_t>);
      timer_ = nullptr;
    }
    cleanup_.Remove();
  }

  // Closes the session's fd and handle; the caller removes it from sessions_.
  static void CloseSession(Session* session) {
    uv_poll_stop(&session->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&session->poll), FreeSession);
    UniqueFd(session->fd).reset();
    session->fd = -1;
  }

  // libuv's answer to POLLERR (src/unix/poll.c, uv__poll_io): it stops the handle and reports UV_EBADF. The
  // real error is pending on the socket (ECONNREFUSED from an ICMP port unreachable, typically): read and
  // clear it with SO_ERROR, count it, and poll again. False when the socket cannot be polled any more.
  bool Recover(uv_poll_t* handle, int fd, uv_poll_cb callback) {
    int error = 0;
    socklen_t len = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
      // The fd itself is broken; polling it again would make libuv abort in epoll_ctl.
      errors_.RecordErrno(errno, "getsockopt");
      return false;
    }
    if (error != 0) errors_.RecordErrno(error, "recv");
    int r = uv_poll_start(handle, UV_READABLE, callback);
    if (r != 0) {
      errors_.RecordErrno(-r, "uv_poll_start");
      return false;
    }
    return true;
  }

  static void OnListener(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<UdpRelay*>(handle->data);
    if (status < 0 && !self->Recover(handle, self->fd_, OnListener)) return;
    self->ReadClients();
  }

  static void OnSession(uv_poll_t* handle, int status, int /*events*/) {
    auto* session = static_cast<Session*>(handle->data);
    UdpRelay* self = session->relay;
    if (status < 0 && !self->Recover(handle, session->fd, OnSession)) return;
    self->ReadReplies(session);
  }

  static void OnSweep(uv_timer_t* timer) {
    auto* self = static_cast<UdpRelay*>(timer->data);
    uint64_t now = uv_now(self->loop_);
    for (auto it = self->sessions_.begin(); it != self->sessions_.end();) {
      Session* session = it->second;
      if (now - session->last_active >= self->idle_ms_) {
        CloseSession(session);
        it = self->sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Client datagrams on the listener: forwarded to each client's session, a run of one client's at a time.
  void ReadClients() {
    Batch& batch = ThreadBatch();
    for (int round = 0; round < kMaxReadsPerCallback; ++round) {
      batch.PrepareReceive(true);
      int n = recvmmsg(fd_, batch.in, kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) errors_.RecordErrno(errno, "recv");
        return;
      }
      uint64_t now = uv_now(loop_);
      unsigned count = static_cast<unsigned>(n);
      unsigned i = 0;
      while (i < count) {
        if (batch.in[i].msg_hdr.msg_flags & MSG_TRUNC) {
          dropped_ += 1;
          i += 1;
          continue;
        }
        ClientKey key;
        if (!MakeKey(batch.names[i], batch.in[i].msg_hdr.msg_namelen, &key)) {
          dropped_ += 1;
          i += 1;
          continue;
        }
        Session* session = FindOrOpen(key, batch.names[i], batch.in[i].msg_hdr.msg_namelen, now);
        if (session == nullptr) {  // counted already
          i += 1;
          continue;
        }
        unsigned run = 0;
        ClientKey next;
        do {
          batch.SetOut(run++, i++, nullptr, 0);
        } while (i < count && !(batch.in[i].msg_hdr.msg_flags & MSG_TRUNC) &&
                 MakeKey(batch.names[i], batch.in[i].msg_hdr.msg_namelen, &next) && next == key);
        session->last_active = now;
        Send(session->fd, batch.out, run, &to_target_, &datagrams_to_target_);
      }
      if (count < kBatch) return;
    }
  }

  // The target's replies on a session: back to its client from the listener.
  void ReadReplies(Session* session) {
    Batch& batch = ThreadBatch();
    for (int round = 0; round < kMaxReadsPerCallback; ++round) {
      batch.PrepareReceive(false);
      int n = recvmmsg(session->fd, batch.in, kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // A pending error (ECONNREFUSED) is cleared by reporting it; replies may still be queued behind it.
        if (errno != EINTR) errors_.RecordErrno(errno, "recv");
        continue;
      }
      unsigned count = static_cast<unsigned>(n);
      unsigned out = 0;
      for (unsigned i = 0; i < count; ++i) {
        if (batch.in[i].msg_hdr.msg_flags & MSG_TRUNC) {
          dropped_ += 1;
          continue;
        }
        batch.SetOut(out++, i, &session->client, session->client_len);
      }
      session->last_active = uv_now(loop_);
      Send(fd_, batch.out, out, &from_target_, &datagrams_from_target_);
      if (count < kBatch) return;
    }
  }

  // Sends msgs[0, count) with as few sendmmsg calls as the socket allows. A full socket buffer (EAGAIN,
  // ENOBUFS) drops the rest of the run; any other error belongs to the first unsent datagram, which is
  // dropped and reported (ECONNREFUSED: a pending ICMP error the send consumed), and the rest still go.
  void Send(int fd, mmsghdr* msgs, unsigned count, uint64_t* bytes, uint64_t* datagrams) {
    unsigned done = 0;
    while (done < count) {
      int r = sendmmsg(fd, msgs + done, count - done, MSG_DONTWAIT);
      if (r > 0) {
        for (unsigned k = done; k < done + static_cast<unsigned>(r); ++k) *bytes += msgs[k].msg_len;
        *datagrams += static_cast<unsigned>(r);
        done += static_cast<unsigned>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        dropped_ += count - done;
        return;
      }
      errors_.RecordErrno(errno, "send");
      dropped_ += 1;
      done += 1;
    }
  }

  // The client's session, opened if it has none. nullptr (counted, the datagram dropped) at the session cap or
  // when the session socket cannot be made.
  Session* FindOrOpen(const ClientKey& key, const sockaddr_storage& client, socklen_t client_len, uint64_t now) {
    auto found = sessions_.find(key);
    if (found != sessions_.end()) return found->second;
    dropped_ += 1;  // taken back below once the session is open
    if (sessions_.size() >= max_sessions_) {
      errors_.Record("EMAXSESSIONS", 0, "");
      return nullptr;
    }
    UniqueFd sock(socket(target_.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sock.valid()) {
      errors_.RecordErrno(errno, "socket");
      return nullptr;
    }
    while (connect(sock.get(), reinterpret_cast<const sockaddr*>(&target_), target_len_) != 0) {
      if (errno == EINTR) continue;
      errors_.RecordErrno(errno, "connect");
      return nullptr;
    }
    std::unique_ptr<Session> session(new (std::nothrow) Session());
    if (!session) {
      errors_.RecordErrno(ENOMEM, "malloc");
      return nullptr;
    }
    int r = uv_poll_init_socket(loop_, &session->poll, sock.get());
    if (r != 0) {
      errors_.RecordErrno(-r, "uv_poll_init");
      return nullptr;
    }
    session->poll.data = session.get();
    r = uv_poll_start(&session->poll, UV_READABLE, OnSession);
    if (r != 0) {
      errors_.RecordErrno(-r, "uv_poll_start");
      uv_close(reinterpret_cast<uv_handle_t*>(&session->poll), FreeSession);
      session.release();
      return nullptr;  // `sock` closes the fd after the handle stopped polling it
    }
    session->relay = this;
    session->key = key;
    session->client = client;
    session->client_len = client_len;
    session->last_active = now;
    try {
      sessions_.emplace(key, session.get());
    } catch (const std::bad_alloc&) {
      errors_.RecordErrno(ENOMEM, "malloc");
      uv_poll_stop(&session->poll);
      uv_close(reinterpret_cast<uv_handle_t*>(&session->poll), FreeSession);
      session.release();
      return nullptr;
    }
    session->fd = sock.release();
    dropped_ -= 1;
    total_ += 1;
    return session.release();
  }

  uv_loop_t* loop_ = nullptr;
  int fd_ = -1;  // the listener, owned once the constructor returned
  uv_poll_t* listener_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  bool closed_ = false;
  CleanupHook<UdpRelay> cleanup_;
  sockaddr_storage target_;
  socklen_t target_len_ = 0;
  uint64_t idle_ms_ = 0;
  size_t max_sessions_ = 0;
  std::unordered_map<ClientKey, Session*, ClientKeyHash> sessions_;
  uint64_t to_target_ = 0;
  uint64_t from_target_ = 0;
  uint64_t datagrams_to_target_ = 0;
  uint64_t datagrams_from_target_ = 0;
  uint64_t total_ = 0;
  uint64_t dropped_ = 0;
  ErrorLog errors_;
};

}  // namespace

void InitUdpRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("udpRelayAvailable", Napi::Boolean::New(env, true));
  exports.Set("bindUdp", Napi::Function::New(env, BindUdp, "bindUdp"));
  exports.Set("udpLocalPort", Napi::Function::New(env, UdpLocalPort, "udpLocalPort"));
  exports.Set("UdpRelay", UdpRelay::Define(env));
}

#endif  // __linux__

}  // namespace berth
