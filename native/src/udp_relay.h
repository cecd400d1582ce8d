// The native UDP relay: a UDP forward's data plane, as plain C++ (no N-API, no libuv; Linux only). Its
// N-API layer is udp_relay_napi.cc, which polls poll_fd() on Node's loop and calls Sweep() on a timer.
//
// What it does: one session per client address, a socket connected to the target, so only the target's
// replies reach it; they go back to the client through the listener. docs/forwarding.md describes it;
// udp_relay.cc says how.
#ifndef BERTH_NATIVE_UDP_RELAY_H_
#define BERTH_NATIVE_UDP_RELAY_H_

#ifdef __linux__
#include <string.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "epoll_set.h"
#include "listener.h"
#include "os_error.h"
#include "unique_fd.h"

namespace berth {

struct UdpTarget {
  sockaddr_storage addr;
  socklen_t len = 0;
};

struct UdpRelayOptions {
  uint64_t idle_timeout_ms = 0;  // a session without a datagram either way this long is closed
  size_t max_sessions = 0;
  // Sessions of one source address (any port): one sender cannot take every session.
  size_t max_sessions_per_source = 0;
};

// The default share of one source address: a quarter of the sessions (app/engine/limits.ts says the same).
inline size_t DefaultSessionsPerSource(size_t max_sessions) { return (max_sessions + 3) / 4; }

// A session is idle, and may make room for a new client at a cap, once no datagram has passed either way for
// this long (or for the idle timeout, when that is shorter).
constexpr uint64_t kEvictIdleMs = 1000;

// Counters since the relay started.
struct UdpRelayStats {
  uint64_t to_target = 0;  // payload bytes
  uint64_t from_target = 0;
  uint64_t datagrams_to_target = 0;
  uint64_t datagrams_from_target = 0;
  uint64_t active = 0;  // open sessions
  uint64_t total = 0;   // sessions ever opened
  uint64_t dropped = 0;
  uint64_t evicted = 0;  // idle sessions closed to make room for a new client at a cap
};

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

class UdpRelay {
 public:
  UdpRelay(UdpTarget target, UdpRelayOptions options);
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;
  ~UdpRelay();

  // Creates the relay's epoll, for the loop to poll (poll_fd()) before a listener is adopted.
  OsError Open();

  // Starts serving the bound datagram socket `fd`. The relay owns `fd` only when this succeeds; on an
  // OsError the caller still does.
  OsError Adopt(int fd);

  // The relay's epoll fd: when it is readable, call OnReadable. -1 once closed.
  int poll_fd() const { return epoll_.fd(); }

  // How often the loop should call Sweep().
  uint64_t sweep_every_ms() const;

  // `now`: the loop's clock in ms.
  void OnReadable(uint64_t now);
  // Closes the sessions idle for the idle timeout.
  void Sweep(uint64_t now);

  // Sessions opened from now on connect there; open ones keep their target.
  void SetTarget(const UdpTarget& target) { target_ = target; }

  // Idempotent and synchronous: every fd is closed when this returns.
  void Close();
  bool closed() const { return closed_; }

  UdpRelayStats stats() const;
  const ErrorLog& errors() const { return errors_; }

 private:
  struct Session;

  // The sessions through one pair of their links, most recently used first.
  struct SessionList {
    Session* newest = nullptr;
    Session* oldest = nullptr;
    size_t size = 0;
  };
  // The sessions of one source address.
  struct Source {
    ClientKey key;  // the address, port zeroed
    SessionList sessions;
  };

  static void Unlink(SessionList* list, Session* session, bool by_source);
  static void PushNewest(SessionList* list, Session* session, bool by_source);
  void Touch(Session* session);
  bool EvictIdle(const SessionList& list);
  void CloseSession(Session* session, bool in_dispatch);
  void FreeDead();
  bool ClearError(int fd, EpollWatch* watch);
  void ReadClients();
  void ReadReplies(Session* session);
  void Send(int fd, mmsghdr* msgs, unsigned count, uint64_t* bytes, uint64_t* datagrams);
  Session* FindOrOpen(const ClientKey& key, const sockaddr_storage& client, socklen_t client_len);

  UdpTarget target_;
  const UdpRelayOptions options_;
  uint64_t now_ = 0;
  bool closed_ = false;
  // Declared before listener_, so the fd is closed before the claim on its number is dropped.
  ListenerClaim claim_;
  UniqueFd listener_;
  EpollWatch listener_watch_;
  EpollSet epoll_;
  std::unordered_map<ClientKey, std::unique_ptr<Session>, ClientKeyHash> sessions_;
  std::unordered_map<ClientKey, Source, ClientKeyHash> sources_;
  SessionList lru_;  // every session
  // Sessions evicted during event dispatch, freed at the end of its batch: a later event of the same
  // epoll_wait may still name them.
  std::unique_ptr<Session> dead_;
  UdpRelayStats stats_;
  ErrorLog errors_;
};

}  // namespace berth

#endif  // __linux__

#endif  // BERTH_NATIVE_UDP_RELAY_H_
