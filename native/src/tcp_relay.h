// The native TCP relay: a TCP forward's data plane, as plain C++ (no N-API, no libuv; Linux only). Its
// N-API layer is tcp_relay_napi.cc, which polls poll_fd() on Node's loop and runs the relay's timer.
//
// What it does: accepts on its listener, connects each client to the target (its addresses in order, or a
// Unix socket), relays both ways with backpressure and half-close, resets and counts like the net.Socket
// plane (app/engine/tcp-node.ts). docs/forwarding.md describes it; tcp_relay.cc says how.
#ifndef BERTH_NATIVE_TCP_RELAY_H_
#define BERTH_NATIVE_TCP_RELAY_H_

#ifdef __linux__
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <list>
#include <vector>

#include "epoll_set.h"
#include "listener.h"
#include "os_error.h"
#include "unique_fd.h"

namespace berth {

// Where connections go: IP addresses tried in order, or a Unix socket.
struct TcpTarget {
  struct Address {
    sockaddr_storage addr;
    socklen_t len;
  };
  std::vector<Address> addresses;
  bool is_unix = false;
  sockaddr_un unix_addr;
  socklen_t unix_len = 0;
};

// At most this many addresses per target.
constexpr size_t kMaxTcpAddresses = 64;

struct TcpRelayOptions {
  uint64_t connect_timeout_ms = 0;  // reaching the target, retries included
  uint64_t max_connections = 0;
  uint64_t retry_refused_ms = 0;  // > 0: a refusing target is tried again this often, until the timeout
};

// Counters since the relay started.
struct TcpRelayStats {
  uint64_t active = 0;
  uint64_t total = 0;
  uint64_t to_target = 0;
  uint64_t from_target = 0;
};

class TcpRelay {
 public:
  // The relay's one-shot timer, run by its event loop: Start() replaces the timer started before, and the
  // loop calls OnTimer() when it is due.
  class Timer {
   public:
    virtual void Start(uint64_t delay_ms) = 0;

   protected:
    ~Timer() = default;
  };

  TcpRelay(TcpTarget target, TcpRelayOptions options, Timer* timer);
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;
  ~TcpRelay();

  // Creates the relay's epoll, for the loop to poll (poll_fd()) before a listener is adopted.
  OsError Open();

  // Starts serving the listening stream socket `fd`. The relay owns `fd` only when this succeeds; on an
  // OsError the caller still does.
  OsError Adopt(int fd);

  // The relay's epoll fd: when it is readable, call OnReadable. -1 once closed.
  int poll_fd() const { return epoll_.fd(); }

  // `now`: the loop's clock in ms.
  void OnReadable(uint64_t now);
  void OnTimer(uint64_t now);

  // Connections accepted from now on go there; open ones keep theirs.
  void SetTarget(TcpTarget target) { target_ = std::move(target); }

  // Idempotent and synchronous: every fd is closed when this returns.
  void Close();
  bool closed() const { return closed_; }

  TcpRelayStats stats() const { return stats_; }
  const ErrorLog& errors() const { return errors_; }

 private:
  struct Conn;

  void Dispatch();
  void Accept();
  void Shed(int error);
  void OpenConnection(UniqueFd fd);
  void Connect(Conn* conn);
  void ConnectFailed(Conn* conn, int error);
  void Fail(Conn* conn, int error, const char* syscall);
  void Connected(Conn* conn);
  void OnSocket(Conn* conn, int side, uint32_t events);
  bool Pump(Conn* conn, int side);
  bool Flush(Conn* conn, int side);
  bool PassFin(Conn* conn, int side);
  void ReadError(Conn* conn, int side, int error);
  void WriteError(Conn* conn, int side, int error);
  void EndAfterError(Conn* conn, int side, int error);
  bool Update(Conn* conn);
  bool Watch(Conn* conn, int side, uint32_t mask);
  void Unwatch(Conn* conn, int side);
  void Abandon(Conn* conn);
  void Finish(Conn* conn, bool reset_client, bool reset_target);
  void ArmTimer(uint64_t due);
  void Tick();

  TcpTarget target_;
  const TcpRelayOptions options_;
  Timer* const timer_;
  uint64_t now_ = 0;
  bool timer_armed_ = false;
  uint64_t timer_due_ = 0;
  uint64_t paused_until_ = 0;
  bool closed_ = false;
  // Declared before listener_, so the fd is closed before the claim on its number is dropped.
  ListenerClaim claim_;
  UniqueFd listener_;
  EpollWatch listener_watch_;
  EpollSet epoll_;
  // The spare fd of the EMFILE trick: closed to make room to accept (and close) what cannot be served.
  UniqueFd reserve_;
  // Connections are freed at once, except during event dispatch, where they wait in `dead_` until its end
  // (later events of the same epoll_wait batch may still name them). Moving one between the lists
  // (splice) allocates nothing.
  std::list<Conn> live_;
  std::list<Conn> dead_;
  TcpRelayStats stats_;
  ErrorLog errors_;
};

}  // namespace berth

#endif  // __linux__

#endif  // BERTH_NATIVE_TCP_RELAY_H_
