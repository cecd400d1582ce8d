// The native UDP relay's sessions (udp_relay.h). Used by app/engine/udp-native.ts through
// udp_relay_napi.cc; node:dgram in app/engine/udp-dgram.ts is the fallback.
//
// node:dgram costs one recvmsg/sendto, a Buffer, an rinfo object, a JS callback, a send request and a
// dns.lookup per datagram. The relay instead reads up to 32 datagrams per recvmmsg and forwards a run of
// consecutive datagrams of one client with one sendmmsg.
//
// Event handling is the TCP relay's: one epoll instance per relay (EpollSet) holds the listener and every
// session's socket, and Node's loop polls that one fd. A session costs an epoll_ctl when it opens and one
// when it expires, and no libuv handle: a DNS forward opens a session per query (resolvers pick a fresh
// source port each time), so a uv_poll_t per session would cost its checks and system calls as often as
// the TCP relay's connections would.
//
// Sessions are kept in least-recently-used order, all of them and those of each source address, in lists
// threaded through the sessions themselves (a touch is a few pointer moves, no allocation). At a cap, the
// least recently used idle session of the source (at its share) or of all (at maxSessions) makes room for a
// new client, so one sender cannot lock the others out for a whole idle timeout (issue 19).
//
// Every socket is close-on-exec from creation (SOCK_CLOEXEC, EPOLL_CLOEXEC): a backend Berth spawns must
// never inherit a listener or a session (docs/forwarding.md).
#include "udp_relay.h"

#ifdef __linux__
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <memory>
#include <new>
#include <string>

namespace berth {

namespace {

constexpr unsigned kBatch = 32;            // datagrams per recvmmsg / sendmmsg
constexpr size_t kBufferSize = 64 * 1024;  // > the largest UDP payload (65527 bytes over IPv6)
constexpr int kMaxReadsPerEvent = 8;       // so one busy socket cannot starve the others
constexpr int kMaxEvents = 128;            // per epoll_wait
constexpr int kMaxRounds = 4;              // epoll_waits per callback
// As the TCP relay's: bytes moved per callback before Node's loop gets its turn. What is left stays ready in
// the (level-triggered) epoll.
constexpr uint64_t kMaxBytesPerCallback = 4u << 20;
constexpr uint64_t kMinSweepMs = 10;
constexpr uint64_t kMaxSweepMs = 5000;

// Tags in the low bit of epoll_event.data.u64 (a Session is 8-byte aligned).
constexpr uint64_t kTagListener = 0;
constexpr uint64_t kTagSession = 1;

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

}  // namespace

// One client's session: a socket connected to the target.
struct UdpRelay::Session {
  struct Links {
    Session* newer = nullptr;
    Session* older = nullptr;
  };
  UniqueFd fd;
  EpollWatch watch;
  ClientKey key;
  Source* source = nullptr;
  sockaddr_storage client;
  socklen_t client_len = 0;
  uint64_t last_active = 0;  // loop ms of the last datagram either way
  Links all;                 // in lru_
  Links same_source;         // in source->sessions
  bool dead = false;         // evicted during dispatch: its events are skipped
  std::unique_ptr<Session> next_dead;

  static Links& Of(Session* session, bool by_source) {
    return by_source ? session->same_source : session->all;
  }
};

void UdpRelay::Unlink(SessionList* list, Session* session, bool by_source) {
  Session::Links& links = Session::Of(session, by_source);
  if (links.newer != nullptr) {
    Session::Of(links.newer, by_source).older = links.older;
  } else {
    list->newest = links.older;
  }
  if (links.older != nullptr) {
    Session::Of(links.older, by_source).newer = links.newer;
  } else {
    list->oldest = links.newer;
  }
  links = Session::Links();
  list->size -= 1;
}

void UdpRelay::PushNewest(SessionList* list, Session* session, bool by_source) {
  Session::Links& links = Session::Of(session, by_source);
  links.newer = nullptr;
  links.older = list->newest;
  if (list->newest != nullptr) Session::Of(list->newest, by_source).newer = session;
  list->newest = session;
  if (list->oldest == nullptr) list->oldest = session;
  list->size += 1;
}

// A datagram either way: the session becomes the most recently used, of all and of its source.
void UdpRelay::Touch(Session* session) {
  session->last_active = now_;
  if (lru_.newest != session) {
    Unlink(&lru_, session, false);
    PushNewest(&lru_, session, false);
  }
  SessionList* mine = &session->source->sessions;
  if (mine->newest != session) {
    Unlink(mine, session, true);
    PushNewest(mine, session, true);
  }
}

// Closes the least recently used session of `list` if it is idle: false when none is.
bool UdpRelay::EvictIdle(const SessionList& list) {
  Session* oldest = list.oldest;
  const uint64_t idle_after =
      options_.idle_timeout_ms < kEvictIdleMs ? options_.idle_timeout_ms : kEvictIdleMs;
  if (oldest == nullptr || now_ - oldest->last_active < idle_after) return false;
  CloseSession(oldest, true);
  stats_.evicted += 1;
  return true;
}

// Closes the session's socket now; its memory goes at once, or, `in_dispatch`, at the end of the batch.
void UdpRelay::CloseSession(Session* session, bool in_dispatch) {
  epoll_.Unwatch(session->fd.get(), &session->watch);
  Unlink(&lru_, session, false);
  Source* source = session->source;
  Unlink(&source->sessions, session, true);
  if (source->sessions.size == 0) {
    const ClientKey source_key = source->key;
    sources_.erase(source_key);
  }
  auto found = sessions_.find(session->key);
  std::unique_ptr<Session> owned = std::move(found->second);
  sessions_.erase(found);
  if (!in_dispatch) return;  // `owned` frees it
  owned->fd.reset();
  owned->dead = true;
  owned->next_dead = std::move(dead_);
  dead_ = std::move(owned);
}

// One at a time, not recursively through next_dead: a batch may evict many.
void UdpRelay::FreeDead() {
  while (dead_) {
    std::unique_ptr<Session> next = std::move(dead_->next_dead);
    dead_ = std::move(next);
  }
}

UdpRelay::UdpRelay(UdpTarget target, UdpRelayOptions options) : target_(target), options_(options) {}

UdpRelay::~UdpRelay() { Close(); }

OsError UdpRelay::Open() {
  if (int error = epoll_.Open()) return {error, "epoll_create1", "a UDP relay"};
  return {};
}

OsError UdpRelay::Adopt(int fd) {
  const std::string what = "fd " + std::to_string(fd);
  if (OsError e = CheckSocketType(fd, SOCK_DGRAM, "datagram", what)) return e;
  sockaddr_storage local;
  memset(&local, 0, sizeof(local));
  socklen_t local_len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return {errno, "getsockname", what};
  }
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
    return {EAFNOSUPPORT, "getsockname", what + " is not an IPv4 or IPv6 socket"};
  }
  if (ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port) == 0) {  // sin_port and sin6_port coincide
    return {EINVAL, "getsockname", what + " is not bound"};
  }
  if (!claim_.Take(fd)) return {EEXIST, "UdpRelay", what + " is the listener of another relay already"};
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
  return {};
}

uint64_t UdpRelay::sweep_every_ms() const {
  uint64_t every = options_.idle_timeout_ms / 4;
  if (every < kMinSweepMs) every = kMinSweepMs;
  if (every > kMaxSweepMs) every = kMaxSweepMs;
  return every;
}

void UdpRelay::Close() {
  if (closed_) return;
  closed_ = true;
  FreeDead();
  lru_ = SessionList();
  sessions_.clear();  // no epoll_ctl for each: the whole epoll goes next
  sources_.clear();
  epoll_.Close();
  listener_.reset();
  claim_.Drop();
}

UdpRelayStats UdpRelay::stats() const {
  UdpRelayStats out = stats_;
  out.active = sessions_.size();
  return out;
}

void UdpRelay::OnReadable(uint64_t now) {
  now_ = now;
  epoll_event events[kMaxEvents];
  const uint64_t moved_before = stats_.to_target + stats_.from_target;
  bool spent = false;
  for (int round = 0; round < kMaxRounds && !closed_ && !spent; ++round) {
    int n = epoll_.Ready(events, kMaxEvents);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // A session evicted during this loop is freed only after it (FreeDead), so every event names one that
    // is alive or marked dead.
    for (int i = 0; i < n && !spent; ++i) {
      const uint32_t ready = events[i].events;
      if ((events[i].data.u64 & 1) == kTagListener) {
        if ((ready & EPOLLERR) && !ClearError(listener_.get(), &listener_watch_)) continue;
        ReadClients();
      } else {
        auto* session = reinterpret_cast<Session*>(events[i].data.u64 & ~uint64_t{1});
        if (session->dead) continue;
        if ((ready & EPOLLERR) && !ClearError(session->fd.get(), &session->watch)) continue;
        ReadReplies(session);
      }
      spent = stats_.to_target + stats_.from_target - moved_before >= kMaxBytesPerCallback;
    }
    FreeDead();
    if (n < kMaxEvents) break;
  }
}

void UdpRelay::Sweep(uint64_t now) {
  // Least recently used first: the first session not idle that long ends the sweep.
  while (lru_.oldest != nullptr && now - lru_.oldest->last_active >= options_.idle_timeout_ms) {
    CloseSession(lru_.oldest, false);
  }
}

// EPOLLERR: an error is pending on the socket (ECONNREFUSED from an ICMP port unreachable, typically). Read
// and clear it with SO_ERROR and count it; datagrams queued behind it are still read. False when the socket
// itself is broken: it is taken out of the epoll, which would report it on every turn.
bool UdpRelay::ClearError(int fd, EpollWatch* watch) {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
    errors_.RecordErrno(errno, "getsockopt");
    epoll_.Unwatch(fd, watch);
    return false;
  }
  if (error != 0) errors_.RecordErrno(error, "recv");
  return true;
}

// Client datagrams on the listener: forwarded to each client's session, a run of one client's at a time.
void UdpRelay::ReadClients() {
  Batch& batch = ThreadBatch();
  for (int round = 0; round < kMaxReadsPerEvent; ++round) {
    batch.PrepareReceive(true);
    int n = recvmmsg(listener_.get(), batch.in, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) errors_.RecordErrno(errno, "recv");
      return;
    }
    unsigned count = static_cast<unsigned>(n);
    unsigned i = 0;
    while (i < count) {
      if (batch.in[i].msg_hdr.msg_flags & MSG_TRUNC) {
        stats_.dropped += 1;
        i += 1;
        continue;
      }
      ClientKey key;
      if (!MakeKey(batch.names[i], batch.in[i].msg_hdr.msg_namelen, &key)) {
        stats_.dropped += 1;
        i += 1;
        continue;
      }
      Session* session = FindOrOpen(key, batch.names[i], batch.in[i].msg_hdr.msg_namelen);
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
      Touch(session);
      Send(session->fd.get(), batch.out, run, &stats_.to_target, &stats_.datagrams_to_target);
    }
    if (count < kBatch) return;
  }
}

// The target's replies on a session: back to its client from the listener.
void UdpRelay::ReadReplies(Session* session) {
  Batch& batch = ThreadBatch();
  for (int round = 0; round < kMaxReadsPerEvent; ++round) {
    batch.PrepareReceive(false);
    int n = recvmmsg(session->fd.get(), batch.in, kBatch, MSG_DONTWAIT, nullptr);
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
        stats_.dropped += 1;
        continue;
      }
      batch.SetOut(out++, i, &session->client, session->client_len);
    }
    Touch(session);
    Send(listener_.get(), batch.out, out, &stats_.from_target, &stats_.datagrams_from_target);
    if (count < kBatch) return;
  }
}

// Sends msgs[0, count) with as few sendmmsg calls as the socket allows. A full socket buffer (EAGAIN,
// ENOBUFS) drops the rest of the run; any other error belongs to the first unsent datagram, which is
// dropped and reported (ECONNREFUSED: a pending ICMP error the send consumed), and the rest still go.
void UdpRelay::Send(int fd, mmsghdr* msgs, unsigned count, uint64_t* bytes, uint64_t* datagrams) {
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
      stats_.dropped += count - done;
      return;
    }
    errors_.RecordErrno(errno, "send");
    stats_.dropped += 1;
    done += 1;
  }
}

// The client's session, opened if it has none. At the source's share, or at the session cap, the least
// recently used idle session of that source, or of all, makes room. nullptr (counted, the datagram dropped)
// when none can, or when the session socket cannot be made.
UdpRelay::Session* UdpRelay::FindOrOpen(const ClientKey& key, const sockaddr_storage& client,
                                        socklen_t client_len) {
  auto found = sessions_.find(key);
  if (found != sessions_.end()) return found->second.get();
  stats_.dropped += 1;  // taken back below once the session is open
  ClientKey source_key = key;
  source_key.bytes[2] = 0;  // the port (MakeKey): a source is an address
  source_key.bytes[3] = 0;
  auto source_it = sources_.find(source_key);
  const size_t from_source = source_it == sources_.end() ? 0 : source_it->second.sessions.size;
  if (from_source >= options_.max_sessions_per_source) {
    if (!EvictIdle(source_it->second.sessions)) {
      errors_.RecordCode("EMAXSESSIONS");
      return nullptr;
    }
  } else if (sessions_.size() >= options_.max_sessions && !EvictIdle(lru_)) {
    errors_.RecordCode("EMAXSESSIONS");
    return nullptr;
  }
  std::unique_ptr<Session> session(new (std::nothrow) Session());
  if (!session) {
    errors_.RecordErrno(ENOMEM, "malloc");
    return nullptr;
  }
  session->fd.reset(socket(target_.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!session->fd.valid()) {
    errors_.RecordErrno(errno, "socket");
    return nullptr;
  }
  while (connect(session->fd.get(), reinterpret_cast<const sockaddr*>(&target_.addr), target_.len) != 0) {
    if (errno == EINTR) continue;
    errors_.RecordErrno(errno, "connect");
    return nullptr;
  }
  session->key = key;
  session->client = client;
  session->client_len = client_len;
  session->last_active = now_;
  Session* raw = session.get();
  Source* source;
  try {
    source = &sources_.try_emplace(source_key).first->second;  // an eviction above may have removed it
  } catch (const std::bad_alloc&) {
    errors_.RecordErrno(ENOMEM, "malloc");
    return nullptr;  // `session` closes the fd
  }
  source->key = source_key;
  try {
    sessions_.emplace(key, std::move(session));
  } catch (const std::bad_alloc&) {
    if (source->sessions.size == 0) sources_.erase(source_key);
    errors_.RecordErrno(ENOMEM, "malloc");
    return nullptr;  // `session` (not moved from when emplace throws) closes the fd
  }
  raw->source = source;
  PushNewest(&lru_, raw, false);
  PushNewest(&source->sessions, raw, true);
  const uint64_t tag = reinterpret_cast<uint64_t>(raw) | kTagSession;
  if (int error = epoll_.Watch(raw->fd.get(), &raw->watch, EPOLLIN, tag)) {
    errors_.RecordErrno(error, "epoll_ctl");
    CloseSession(raw, false);  // new, so no event of this batch names it
    return nullptr;
  }
  stats_.dropped -= 1;
  stats_.total += 1;
  return raw;
}

}  // namespace berth

#endif  // __linux__
