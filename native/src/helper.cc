// berth-helper: binds a TCP or UDP port on a local address for an allowed local user and passes the bound
// socket back with SCM_RIGHTS. It does that one thing: it never opens a path, runs a command or resolves a
// name on a client's behalf (the only path and name it touches come from its own command line).
//
// Usage and protocol: docs/helper-protocol.md. Exit status: 0 after SIGINT/SIGTERM, 1 when the socket
// cannot be set up, 2 for bad flags.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protocol.h"
#include "unique_fd.h"

namespace berth {
namespace {

namespace p = protocol;

// Bursts of clients wait in the kernel's queue rather than being refused (a Unix socket refuses with EAGAIN).
constexpr int kListenBacklog = SOMAXCONN;
// Node's own default backlog, so a port from the helper behaves like one bound directly.
constexpr int kTcpBacklog = 511;
// Slots for clients it serves: in all, and for one user. The kernel's queue is first come, first served, so
// the helper accepts whatever waits there; a user at its share gives up its own oldest unfinished request
// for a new one, and when all slots are taken, the user holding the most does. One user's slow or stuck
// clients therefore never keep another user's request waiting in the queue (issue 19).
constexpr size_t kMaxClients = 512;
constexpr size_t kMaxClientsPerUid = 128;
// Connections accepted per turn of the loop, so a flood of them cannot hold up the clients already in.
constexpr int kMaxAcceptsPerTurn = 64;
// A client has this long from connect to a complete request; a slow or stuck one is answered and dropped
// without delaying anyone else.
constexpr int64_t kClientTimeoutMs = 5000;
// A peer that is not allowed is answered at accept, before any byte of its request is read, and then kept
// (few of them, briefly) only until it hangs up: idle connections from such users must not crowd out the
// users the helper serves.
constexpr int64_t kUntrustedTimeoutMs = 1000;
constexpr size_t kMaxUntrustedClients = 8;
// Out of fds (or memory) at accept: the queue is left alone this long, rather than polled in a busy loop.
constexpr int64_t kAcceptPauseMs = 100;

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

struct Options {
  std::string socket_path;
  // 0660, or 0666 when --allow-uid is given without --socket-group (ParseFlags), so that the users it names
  // can connect: the helper checks every peer's uid at accept, so the mode is not what keeps others out.
  mode_t socket_mode = 0660;
  std::string socket_group;
  std::vector<uid_t> allow_uids;
  uint16_t port_lo = 1;
  uint16_t port_hi = 1023;
};

const char kUsage[] =
    "usage: berth-helper --socket PATH [--socket-mode MODE] [--socket-group NAME] [--allow-uid UID]...\n"
    "                    [--ports LO-HI]\n"
    "  or started by systemd socket activation (LISTEN_PID/LISTEN_FDS), where --socket is not needed.\n"
    "Binds TCP/UDP ports on local addresses for the allowed users (root only, unless --allow-uid) and\n"
    "passes the sockets back. --ports defaults to 1-1023; --socket-mode to 0666 with --allow-uid and no\n"
    "--socket-group, else 0660. See docs/helper-protocol.md.\n";

[[noreturn]] void BadFlags(const std::string& message) {
  fprintf(stderr, "berth-helper: %s\n%s", message.c_str(), kUsage);
  exit(2);
}

bool ParseUnsigned(const char* text, unsigned long max, int base, unsigned long* out) {
  if (*text == '\0' || *text == '-' || *text == '+') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long value = strtoul(text, &end, base);
  if (errno != 0 || *end != '\0' || value > max) return false;
  *out = value;
  return true;
}

Options ParseFlags(int argc, char** argv) {
  Options options;
  bool have_mode = false;
  bool have_ports = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      exit(0);
    }
    std::string name = arg;
    std::string value;
    bool inline_value = false;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    if (name != "--socket" && name != "--socket-mode" && name != "--socket-group" && name != "--allow-uid" &&
        name != "--ports") {
      BadFlags("unknown argument '" + arg + "'");
    }
    if (!inline_value) {
      if (i + 1 >= argc) BadFlags(name + " needs a value");
      value = argv[++i];
    }
    if (name == "--socket") {
      if (!options.socket_path.empty()) BadFlags("--socket given twice");
      if (value.empty() || value[0] != '/') BadFlags("--socket needs an absolute path");
      if (value.size() >= sizeof(sockaddr_un::sun_path)) {
        BadFlags("--socket path is too long for a Unix socket (at most " +
                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
      }
      options.socket_path = value;
    } else if (name == "--socket-mode") {
      unsigned long mode = 0;
      if (have_mode || !ParseUnsigned(value.c_str(), 0777, 8, &mode)) {
        BadFlags("--socket-mode needs one octal mode such as 0660, got '" + value + "'");
      }
      have_mode = true;
      options.socket_mode = static_cast<mode_t>(mode);
    } else if (name == "--socket-group") {
      if (value.empty() || !options.socket_group.empty()) {
        BadFlags("--socket-group needs one group name");
      }
      options.socket_group = value;
    } else if (name == "--allow-uid") {
      unsigned long uid = 0;
      if (!ParseUnsigned(value.c_str(), 0xfffffffe, 10, &uid)) {
        BadFlags("--allow-uid needs a numeric user id such as 1000, got '" + value + "'");
      }
      options.allow_uids.push_back(static_cast<uid_t>(uid));
    } else if (name == "--ports") {
      size_t dash = value.find('-');
      unsigned long lo = 0;
      unsigned long hi = 0;
      if (have_ports || dash == std::string::npos ||
          !ParseUnsigned(value.substr(0, dash).c_str(), 65535, 10, &lo) ||
          !ParseUnsigned(value.substr(dash + 1).c_str(), 65535, 10, &hi) || lo < 1 || lo > hi) {
        BadFlags("--ports needs a range LO-HI with 1 <= LO <= HI <= 65535, got '" + value + "'");
      }
      have_ports = true;
      options.port_lo = static_cast<uint16_t>(lo);
      options.port_hi = static_cast<uint16_t>(hi);
    }
  }
  if (!have_mode) {
    options.socket_mode = !options.allow_uids.empty() && options.socket_group.empty() ? 0666 : 0660;
  }
  return options;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool SetNonBlockingCloexec(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return false;
  return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

// systemd socket activation: the socket is fd 3 when LISTEN_PID names this process.
int TakeActivatedSocket() {
  const char* pid = getenv("LISTEN_PID");
  const char* fds = getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr) return -1;
  unsigned long listen_pid = 0;
  unsigned long listen_fds = 0;
  bool ours = ParseUnsigned(pid, 0xffffffffUL, 10, &listen_pid) && static_cast<pid_t>(listen_pid) == getpid();
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!ours) return -1;
  if (!ParseUnsigned(fds, 1024, 10, &listen_fds) || listen_fds != 1) {
    fprintf(stderr, "berth-helper: socket activation must pass exactly one socket (LISTEN_FDS=%s)\n", fds);
    exit(1);
  }
  int fd = 3;
  int type = 0;
  int listening = 0;
  socklen_t len = sizeof(type);
  sockaddr_storage addr;
  socklen_t addr_len = sizeof(addr);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0 || addr.ss_family != AF_UNIX) {
    fprintf(stderr, "berth-helper: the activated fd 3 is not a Unix stream socket\n");
    exit(1);
  }
  len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && !listening &&
      listen(fd, kListenBacklog) != 0) {
    fprintf(stderr, "berth-helper: cannot listen on the activated socket: %s\n", strerror(errno));
    exit(1);
  }
  if (!SetNonBlockingCloexec(fd)) {
    fprintf(stderr, "berth-helper: cannot set up the activated socket: %s\n", strerror(errno));
    exit(1);
  }
  return fd;
}

[[noreturn]] void SetupFailed(const std::string& what, int error) {
  fprintf(stderr, "berth-helper: %s: %s\n", what.c_str(), strerror(error));
  exit(1);
}

std::string Octal(mode_t mode) {
  char text[8];
  snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string JoinPath(const std::string& folder, const std::string& name) {
  return folder == "/" ? "/" + name : folder + "/" + name;
}

// A folder on the way to the socket, as lstat saw it.
struct Folder {
  std::string path;
  struct stat st;
};

// The socket file the helper bound: at exit it removes the file at `path` only if that is still this one.
struct BoundSocket {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

void RemoveOwnSocket(const BoundSocket& bound) {
  struct stat st;
  if (lstat(bound.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == bound.dev &&
      st.st_ino == bound.ino) {
    unlink(bound.path.c_str());
  }
}

[[noreturn]] void UnsafeFolder(const std::string& path, const std::string& why) {
  fprintf(stderr,
          "berth-helper: %s %s: every folder above --socket must be root's (or the helper's own user's) and "
          "writable by no one else unless it is sticky like /tmp, or another user could move the socket "
          "elsewhere (use a folder such as /run/berth)\n",
          path.c_str(), why.c_str());
  exit(1);
}

bool TrustedOwner(uid_t uid) { return uid == 0 || uid == geteuid(); }

// Another user who may rename a folder on the way (or an entry in it) can put a symlink in its place
// between bind() and lchown(), or before the unlink() at exit, and make root act on a file elsewhere. A
// sticky folder may be writable by all: only root, its owner and an entry's owner may rename that entry, and
// the next folder down must be root's anyway.
void CheckFolder(const Folder& folder) {
  if (!S_ISDIR(folder.st.st_mode)) UnsafeFolder(folder.path, "is not a folder");
  if (!TrustedOwner(folder.st.st_uid)) {
    UnsafeFolder(folder.path, "belongs to uid " + std::to_string(folder.st.st_uid));
  }
  if ((folder.st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (folder.st.st_mode & S_ISVTX) == 0) {
    UnsafeFolder(folder.path,
                 "may be written by others (mode " + Octal(folder.st.st_mode) + ") and is not sticky");
  }
}

// Adds the components of `path` to `pending`, the first one last (pending is walked from its back).
void PushComponents(const std::string& path, std::vector<std::string>* pending) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  pending->insert(pending->end(), parts.rbegin(), parts.rend());
}

// Walks the absolute path `dir` from / one component at a time, as the kernel resolves it, checking every
// folder on the way (CheckFolder) and following symbolic links that root or the helper's user owns; the last
// folder is created (0755) when it is missing. Returns the folders from / down to `dir`'s real location.
std::vector<Folder> WalkFolders(const std::string& dir) {
  std::vector<Folder> chain(1);
  chain[0].path = "/";
  if (lstat("/", &chain[0].st) != 0) SetupFailed("cannot inspect /", errno);
  CheckFolder(chain[0]);
  std::vector<std::string> pending;
  PushComponents(dir, &pending);
  int links = 0;
  while (!pending.empty()) {
    const std::string name = pending.back();
    pending.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      if (chain.size() > 1) chain.pop_back();
      continue;
    }
    Folder next;
    next.path = JoinPath(chain.back().path, name);
    if (lstat(next.path.c_str(), &next.st) != 0) {
      if (errno != ENOENT || !pending.empty()) SetupFailed("cannot inspect the folder " + next.path, errno);
      // In a folder just checked, so no one else can have put anything there meanwhile.
      mode_t old_umask = umask(0);
      int made = mkdir(next.path.c_str(), 0755);
      int error = errno;
      umask(old_umask);
      if (made != 0 && error != EEXIST) SetupFailed("cannot create the folder " + next.path, error);
      if (lstat(next.path.c_str(), &next.st) != 0)
        SetupFailed("cannot inspect the folder " + next.path, errno);
    }
    if (S_ISLNK(next.st.st_mode)) {
      if (!TrustedOwner(next.st.st_uid)) {
        UnsafeFolder(next.path, "is a symbolic link of uid " + std::to_string(next.st.st_uid));
      }
      if (++links > 40) SetupFailed("cannot resolve the folder " + dir, ELOOP);
      char target[PATH_MAX];
      ssize_t n = readlink(next.path.c_str(), target, sizeof(target) - 1);
      if (n < 0) SetupFailed("cannot read the symbolic link " + next.path, errno);
      target[n] = '\0';
      if (target[0] == '/') chain.resize(1);
      PushComponents(target, &pending);
      continue;
    }
    CheckFolder(next);
    chain.push_back(next);
  }
  return chain;
}

#if defined(__APPLE__)
using GroupId = int;  // getgrouplist's type there
#else
using GroupId = gid_t;
#endif

// The groups of `uid` in the user database (none for a uid without an entry).
std::vector<gid_t> GroupsOf(uid_t uid) {
  passwd* pw = getpwuid(uid);
  if (pw == nullptr) return {};
  const std::string name = pw->pw_name;
  const gid_t primary = pw->pw_gid;
  std::vector<GroupId> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    int count = static_cast<int>(groups.size());
    if (getgrouplist(name.c_str(), static_cast<GroupId>(primary), groups.data(), &count) >= 0) {
      return std::vector<gid_t>(groups.begin(), groups.begin() + count);
    }
    groups.resize(static_cast<size_t>(count > static_cast<int>(groups.size()) ? count : 2 * groups.size()));
  }
  return {primary};
}

// The kernel's owner / group / other rule: whether `uid` has `bit` (S_IXOTH, S_IWOTH) on a file of `st`.
bool Permits(uid_t uid, const std::vector<gid_t>& groups, const struct stat& st, mode_t bit) {
  if (uid == 0) return true;
  if (st.st_uid == uid) return (st.st_mode & (bit << 6)) != 0;
  for (gid_t group : groups) {
    if (group == st.st_gid) return (st.st_mode & (bit << 3)) != 0;
  }
  return (st.st_mode & bit) != 0;
}

std::string GroupName(gid_t gid) {
  group* gr = getgrgid(gid);
  return gr != nullptr ? std::string(gr->gr_name) : std::to_string(gid);
}

// Exits unless every uid of --allow-uid may reach the socket: through its folders (search) and to the file
// (write). The start line names those uids, so it must not promise what the socket's mode, group or folders
// do not give.
void CheckReachable(const Options& options, const std::vector<Folder>& chain, const BoundSocket& bound,
                    const struct stat& socket_st) {
  for (uid_t uid : options.allow_uids) {
    std::vector<gid_t> groups = GroupsOf(uid);
    std::string problem;
    for (const Folder& folder : chain) {
      if (!Permits(uid, groups, folder.st, S_IXOTH)) {
        problem = "the folder " + folder.path + " (mode " + Octal(folder.st.st_mode) + ", uid " +
                  std::to_string(folder.st.st_uid) + ", group " + GroupName(folder.st.st_gid) +
                  ") does not let it through: make it searchable (chmod o+x) or choose another --socket";
        break;
      }
    }
    if (problem.empty() && !Permits(uid, groups, socket_st, S_IWOTH)) {
      problem =
          "the socket's mode " + Octal(socket_st.st_mode) + " and group " + GroupName(socket_st.st_gid) +
          " do not let it connect: add --socket-group with a group of uid " + std::to_string(uid) +
          " (and --socket-mode 0660), or use --socket-mode 0666 (the helper still serves only the users "
          "--allow-uid names)";
    }
    if (!problem.empty()) {
      RemoveOwnSocket(bound);
      fprintf(stderr, "berth-helper: --allow-uid %u could not connect to %s: %s\n",
              static_cast<unsigned>(uid), bound.path.c_str(), problem.c_str());
      exit(1);
    }
  }
}

// The listening socket at --socket, and what to remove at exit. An old socket file is replaced only when no
// helper answers on it; any other kind of file there is left alone.
struct OpenedSocket {
  UniqueFd fd;
  BoundSocket bound;
};

OpenedSocket OpenSocket(const Options& options) {
  const size_t slash = options.socket_path.rfind('/');
  const std::string name = options.socket_path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") {
    BadFlags("--socket needs the path of a file, got '" + options.socket_path + "'");
  }
  const std::vector<Folder> chain = WalkFolders(options.socket_path.substr(0, slash));
  // The real path: every folder of it was checked, whatever links the given one went through.
  const std::string path = JoinPath(chain.back().path, name);
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    fprintf(stderr, "berth-helper: %s (the real path of --socket) is too long for a Unix socket\n",
            path.c_str());
    exit(1);
  }
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size());

  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      fprintf(stderr, "berth-helper: %s exists and is not a socket; refusing to replace it\n", path.c_str());
      exit(1);
    }
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM, 0));
    if (probe.valid() && connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      fprintf(stderr, "berth-helper: another berth-helper is already listening on %s\n", path.c_str());
      exit(1);
    }
    if (unlink(path.c_str()) != 0) SetupFailed("cannot remove the stale socket " + path, errno);
  }

  OpenedSocket opened;
  UniqueFd& fd = opened.fd;
  fd.reset(socket(AF_UNIX, SOCK_STREAM, 0));
  if (!fd.valid()) SetupFailed("socket", errno);
  if (!SetNonBlockingCloexec(fd.get())) SetupFailed("fcntl", errno);
  // The umask gives the socket file its --socket-mode as bind() creates it: no chmod by path afterwards.
  mode_t old_umask = umask(~options.socket_mode & 0777);
  int bound = bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  umask(old_umask);
  if (bound != 0) SetupFailed("cannot bind " + path, bind_errno);
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    fprintf(stderr, "berth-helper: %s changed under the helper while it was being set up\n", path.c_str());
    exit(1);
  }
  opened.bound.path = path;
  opened.bound.dev = st.st_dev;
  opened.bound.ino = st.st_ino;
  if (!options.socket_group.empty()) {
    errno = 0;
    group* gr = getgrnam(options.socket_group.c_str());
    if (gr == nullptr) {
      RemoveOwnSocket(opened.bound);
      fprintf(stderr, "berth-helper: no group named '%s'\n", options.socket_group.c_str());
      exit(2);
    }
    // lchown: never follows a symlink, whatever the folder checks above allowed.
    if (lchown(path.c_str(), static_cast<uid_t>(-1), gr->gr_gid) != 0) {
      int error = errno;
      RemoveOwnSocket(opened.bound);
      SetupFailed("cannot give " + path + " to group " + options.socket_group, error);
    }
  }
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_dev != opened.bound.dev ||
      st.st_ino != opened.bound.ino || (st.st_mode & 0777) != options.socket_mode) {
    fprintf(stderr, "berth-helper: %s changed under the helper while it was being set up\n", path.c_str());
    exit(1);
  }
  CheckReachable(options, chain, opened.bound, st);
  if (listen(fd.get(), kListenBacklog) != 0) {
    int error = errno;
    RemoveOwnSocket(opened.bound);
    SetupFailed("cannot listen on " + path, error);
  }
  return opened;
}

struct Client {
  enum class State {
    kReading,   // a peer the helper serves, until its EOF (the end of its request)
    kDraining,  // answered before its EOF (an oversized frame): the rest is read and dropped until its EOF
    kRefused,   // a peer it does not serve, answered at accept: nothing is read; kept until it hangs up
  };
  UniqueFd fd;
  State state = State::kReading;
  uint8_t buffer[p::kRequestSize + 1];
  size_t size = 0;
  uint64_t serial = 0;  // accept order: the oldest client has the lowest
  int64_t deadline = 0;
  // The peer, from SO_PEERCRED at accept (the kernel's record of who connected, fixed at connect()).
  bool known = false;
  uid_t uid = static_cast<uid_t>(-1);
  pid_t pid = 0;

  bool trusted() const { return state != State::kRefused; }
  std::string who() const {
    return known ? "uid " + std::to_string(uid) + " pid " + std::to_string(pid) : std::string("unknown peer");
  }
};

bool PeerUid(int fd, uid_t* uid, pid_t* pid) {
#if defined(__linux__)
  ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  *uid = cred.uid;
  *pid = cred.pid;
  return true;
#else
  gid_t gid;
  *pid = 0;
  return getpeereid(fd, uid, &gid) == 0;
#endif
}

bool AddressIsLocal(const p::Request& request) {
  const uint8_t* a = request.address;
  if (request.family == p::kFamilyIpv4) {
    if (a[0] == 127) return true;
    if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) return true;  // every local address
  } else {
    static const uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(a, kLoopback6, 16) == 0 || p::AllZero(a, 16)) return true;
  }
  // Otherwise the address must be one of this machine's interfaces now. bind() checks that too, but
  // net.ipv4.ip_nonlocal_bind or IP_FREEBIND defaults could let a foreign address through.
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, freeifaddrs);
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    if (request.family == p::kFamilyIpv4 && it->ifa_addr->sa_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(it->ifa_addr);
      if (memcmp(&in->sin_addr, a, 4) == 0) return true;
    } else if (request.family == p::kFamilyIpv6 && it->ifa_addr->sa_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(it->ifa_addr);
      if (memcmp(&in6->sin6_addr, a, 16) == 0) return true;
    }
  }
  return false;
}

std::string Describe(const p::Request& request) {
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(request.family == p::kFamilyIpv4 ? AF_INET : AF_INET6, request.address, text, sizeof(text));
  std::string where = request.family == p::kFamilyIpv6 ? "[" + std::string(text) + "]" : text;
  return std::string(request.protocol == p::kProtocolTcp ? "tcp " : "udp ") + where + ":" +
         std::to_string(request.port);
}

void SetText(char* field, size_t width, const std::string& text) {
  size_t n = text.size() < width ? text.size() : width;
  memcpy(field, text.data(), n);
  field[n] = '\0';
}

p::Reply MakeReply(uint8_t op, uint8_t status, int error, const char* syscall, const std::string& message) {
  p::Reply reply;
  reply.op = op;
  reply.status = status;
  reply.error = error;
  reply.version = p::kVersion;
  SetText(reply.syscall, p::kSyscallSize, syscall);
  SetText(reply.message, p::kMessageSize, message);
  return reply;
}

// Binds what the request names. Returns the bound fd, or an invalid one with `reply` filled in.
UniqueFd BindFor(const p::Request& request, p::Reply* reply) {
  int family = request.family == p::kFamilyIpv4 ? AF_INET : AF_INET6;
  int type = request.protocol == p::kProtocolTcp ? SOCK_STREAM : SOCK_DGRAM;
  // The helper's own copy is close-on-exec (it spawns nothing, but it costs nothing). This flag is per fd:
  // the client's received fd gets close-on-exec only from its own recvmsg (MSG_CMSG_CLOEXEC).
  UniqueFd fd(socket(family, type, 0));
  if (!fd.valid() || fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) {
    *reply = MakeReply(request.op, p::kStatusFailed, errno, "socket",
                       "cannot create a socket: " + std::string(strerror(errno)));
    return UniqueFd();
  }
  if (type == SOCK_STREAM) {
    // libuv sets SO_REUSEADDR on every TCP listener, so a port from the helper rebinds past TIME_WAIT just
    // like one Berth binds directly. UDP gets none here, but Node's dgram adoption (uv_udp_open) turns on
    // SO_REUSEADDR (SO_REUSEPORT on macOS) too: another process allowed to bind the port could share it.
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  sockaddr_storage addr;
  memset(&addr, 0, sizeof(addr));
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(request.port);
    memcpy(&in->sin_addr, request.address, 4);
    len = sizeof(*in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(request.port);
    memcpy(&in6->sin6_addr, request.address, 16);
    len = sizeof(*in6);
  }
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int error = errno;
    *reply = MakeReply(request.op, p::kStatusFailed, error, "bind",
                       "cannot bind " + Describe(request) + ": " + strerror(error));
    return UniqueFd();
  }
  if (type == SOCK_STREAM && listen(fd.get(), kTcpBacklog) != 0) {
    int error = errno;
    *reply = MakeReply(request.op, p::kStatusFailed, error, "listen",
                       "cannot listen on " + Describe(request) + ": " + strerror(error));
    return UniqueFd();
  }
  *reply = MakeReply(request.op, p::kStatusOk, 0, "", "bound " + Describe(request));
  return fd;
}

class Helper {
 public:
  Helper(Options options, UniqueFd listener) : options_(std::move(options)), listener_(std::move(listener)) {}

  void Run() {
    while (!g_stop) {
      int64_t now = NowMs();
      const bool accepting = now >= accept_paused_until_;
      std::vector<pollfd> fds;
      fds.push_back({listener_.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
      int64_t wait = 1000;  // also bounds how late a signal is noticed
      if (!accepting && accept_paused_until_ - now < wait) wait = accept_paused_until_ - now;
      for (auto& client : clients_) {
        // A refused peer is only watched for its hang-up (reported whatever the events asked for).
        fds.push_back({client->fd.get(), static_cast<short>(client->trusted() ? POLLIN : 0), 0});
        if (client->deadline - now < wait) wait = client->deadline - now;
      }
      if (wait < 0) wait = 0;
      int ready = poll(fds.data(), fds.size(), static_cast<int>(wait));
      if (ready < 0 && errno != EINTR) {
        fprintf(stderr, "berth-helper: poll: %s\n", strerror(errno));
        return;
      }
      now = NowMs();
      // Clients first (their indices match fds), then new connections appended after them.
      std::vector<std::unique_ptr<Client>> keep;
      for (size_t i = 0; i < clients_.size(); ++i) {
        std::unique_ptr<Client>& client = clients_[i];
        const short revents = ready > 0 ? fds[i + 1].revents : 0;
        bool done = false;
        if (!client->trusted()) {
          done = (revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 || now >= client->deadline;
        } else {
          if (revents & (POLLIN | POLLHUP | POLLERR)) done = Read(*client);
          if (!done && now >= client->deadline) {
            if (client->state == Client::State::kReading) {
              Respond(*client,
                      MakeReply(0, p::kStatusBadRequest, ETIMEDOUT, "",
                                "no complete request (ended by shutdown) in time"),
                      nullptr);
            }
            done = true;
          }
        }
        if (!done) keep.push_back(std::move(client));
      }
      clients_ = std::move(keep);
      if (ready > 0 && (fds[0].revents & POLLIN)) Accept(now);
    }
  }

 private:
  void Accept(int64_t now) {
    // The listener is non-blocking, so this never waits; what is left is taken on the next turn.
    for (int i = 0; i < kMaxAcceptsPerTurn; ++i) {
      int fd = accept(listener_.get(), nullptr, nullptr);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // EAGAIN: drained. Out of fds or memory: the pending clients wait in the queue until some free up.
        if (errno != EAGAIN && errno != EWOULDBLOCK) accept_paused_until_ = now + kAcceptPauseMs;
        return;
      }
      auto client = std::make_unique<Client>();
      client->fd.reset(fd);
      if (!SetNonBlockingCloexec(fd)) continue;
      client->serial = ++accepted_;
      client->known = PeerUid(fd, &client->uid, &client->pid);
      // Who it is decides everything, so it is settled before a byte of its request is read.
      if (!client->known || !Allowed(client->uid)) {
        Refuse(std::move(client), now);
        continue;
      }
      client->deadline = now + kClientTimeoutMs;
      // Most clients have sent their whole request by now: they are served at once and take no slot.
      if (Read(*client)) continue;
      MakeRoomFor(client->uid);
      clients_.push_back(std::move(client));
    }
  }

  // A peer the helper does not serve learns why at once. Its request is never read: the helper shuts its
  // write side (the client reads the answer and then EOF) and keeps the connection, in one of a few slots,
  // until the client hangs up or for a second. Closing at once would make a client still writing its
  // request fail with EPIPE before it could read the answer.
  void Refuse(std::unique_ptr<Client> client, int64_t now) {
    fprintf(stderr, "berth-helper: %s: refused: user not allowed\n", client->who().c_str());
    Respond(*client,
            MakeReply(0, p::kStatusDenied, EPERM, "",
                      "user " + (client->known ? std::to_string(client->uid) : std::string("?")) +
                          " is not allowed by this berth-helper (see its --allow-uid)"),
            nullptr);
    shutdown(client->fd.get(), SHUT_WR);
    size_t refused = 0;
    for (const auto& other : clients_) refused += other->trusted() ? 0 : 1;
    if (refused >= kMaxUntrustedClients) return;  // closed now
    client->state = Client::State::kRefused;
    client->deadline = now + kUntrustedTimeoutMs;
    clients_.push_back(std::move(client));
  }

  // Frees a slot for a new client of `uid` when it needs one: the oldest client of `uid` when `uid` holds its
  // share, else, when every slot is taken, the oldest of the user holding the most.
  void MakeRoomFor(uid_t uid) {
    std::map<uid_t, size_t> held;
    size_t total = 0;
    for (const auto& client : clients_) {
      if (!client->trusted()) continue;
      held[client->uid] += 1;
      total += 1;
    }
    uid_t victim = uid;
    if (held[uid] < kMaxClientsPerUid) {
      if (total < kMaxClients) return;
      for (const auto& entry : held) {
        if (entry.second > held[victim]) victim = entry.first;
      }
    }
    size_t oldest = clients_.size();
    for (size_t i = 0; i < clients_.size(); ++i) {
      const Client& client = *clients_[i];
      if (client.trusted() && client.uid == victim &&
          (oldest == clients_.size() || client.serial < clients_[oldest]->serial)) {
        oldest = i;
      }
    }
    if (oldest == clients_.size()) return;
    Client& evicted = *clients_[oldest];
    if (evicted.state == Client::State::kReading) {
      fprintf(stderr, "berth-helper: %s: dropped: %zu unfinished requests of uid %u at once\n",
              evicted.who().c_str(), held[victim], static_cast<unsigned>(victim));
      Respond(evicted,
              MakeReply(0, p::kStatusBadRequest, EBUSY, "",
                        "no complete request in time: this user had too many unfinished requests at once"),
              nullptr);
    }
    clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(oldest));
  }

  // Returns true when the client is finished with (answered or gone).
  bool Read(Client& client) {
    const bool draining = client.state == Client::State::kDraining;
    for (;;) {
      uint8_t discard[512];
      ssize_t n = draining ? recv(client.fd.get(), discard, sizeof(discard), 0)
                           : recv(client.fd.get(), client.buffer + client.size,
                                  sizeof(client.buffer) - client.size, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno != EAGAIN && errno != EWOULDBLOCK;
      }
      if (n == 0) {
        if (!draining) Handle(client);
        return true;
      }
      if (draining) continue;
      client.size += static_cast<size_t>(n);
      if (client.size > p::kRequestSize) {
        // Answered at once; the rest is drained (bounded by the client's deadline), never buffered: closing
        // a Unix socket with unread data resets it, and the client could lose the reply.
        Handle(client);
        shutdown(client.fd.get(), SHUT_WR);
        client.state = Client::State::kDraining;
        return Read(client);
      }
    }
  }

  // A complete request of a peer the helper serves (checked at accept).
  void Handle(Client& client) {
    p::Request request;
    p::ParseError parsed = p::ParseRequest(client.buffer, client.size, &request);
    const std::string who = client.who();
    if (parsed != p::ParseError::kOk) {
      int error = parsed == p::ParseError::kBadVersion ? EPROTONOSUPPORT : EPROTO;
      fprintf(stderr, "berth-helper: %s: bad request: %s\n", who.c_str(), p::ParseErrorMessage(parsed));
      Respond(client, MakeReply(0, p::kStatusBadRequest, error, "", p::ParseErrorMessage(parsed)), nullptr);
      return;
    }
    if (request.op == p::kOpPing) {
      Respond(client, MakeReply(request.op, p::kStatusOk, 0, "", "berth-helper protocol 1"), nullptr);
      return;
    }
    std::string what = Describe(request);
    if (request.port < options_.port_lo || request.port > options_.port_hi) {
      fprintf(stderr, "berth-helper: %s: refused %s: port outside --ports\n", who.c_str(), what.c_str());
      Respond(client,
              MakeReply(request.op, p::kStatusDenied, EPERM, "",
                        "port " + std::to_string(request.port) + " is outside this helper's --ports " +
                            std::to_string(options_.port_lo) + "-" + std::to_string(options_.port_hi)),
              nullptr);
      return;
    }
    if (!AddressIsLocal(request)) {
      fprintf(stderr, "berth-helper: %s: refused %s: not a local address\n", who.c_str(), what.c_str());
      Respond(client,
              MakeReply(request.op, p::kStatusFailed, EADDRNOTAVAIL, "bind",
                        what + " is not on an address of this machine"),
              nullptr);
      return;
    }
    p::Reply reply;
    UniqueFd bound = BindFor(request, &reply);
    fprintf(stderr, "berth-helper: %s: %s: %s\n", who.c_str(), what.c_str(),
            bound.valid() ? "sent" : reply.message);
    Respond(client, reply, &bound);
    // `bound` closes here: the helper keeps no copy, or the port would stay bound after Berth closed it.
  }

  bool Allowed(uid_t uid) const {
    if (uid == 0) return true;  // root could bind the port itself anyway
    for (uid_t allowed : options_.allow_uids) {
      if (allowed == uid) return true;
    }
    return false;
  }

  // Sends the reply (with the fd when there is one). The client socket is non-blocking and the reply is far
  // smaller than any socket buffer; if it still cannot be sent at once, the client gets nothing.
  void Respond(Client& client, const p::Reply& reply, UniqueFd* fd) {
    uint8_t frame[p::kReplySize];
    p::EncodeReply(reply, frame);
    iovec iov = {frame, sizeof(frame)};
    msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd != nullptr && fd->valid()) {
      memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      int raw = fd->get();
      memcpy(CMSG_DATA(cmsg), &raw, sizeof(int));
    }
#ifdef MSG_NOSIGNAL
    const int flags = MSG_NOSIGNAL;
#else
    const int flags = 0;  // SIGPIPE is ignored process-wide instead
#endif
    while (sendmsg(client.fd.get(), &msg, flags) < 0 && errno == EINTR) {
    }
  }

  Options options_;
  UniqueFd listener_;
  std::vector<std::unique_ptr<Client>> clients_;
  uint64_t accepted_ = 0;
  int64_t accept_paused_until_ = 0;
};

}  // namespace
}  // namespace berth

int main(int argc, char** argv) {
  berth::Options options = berth::ParseFlags(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = berth::OnSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  int activated = berth::TakeActivatedSocket();
  berth::OpenedSocket opened;
  if (activated >= 0) {
    // systemd created the socket (SocketMode=, SocketGroup=) and removes it: the helper touches no path.
    opened.fd.reset(activated);
  } else {
    if (options.socket_path.empty()) berth::BadFlags("--socket PATH is required");
    opened = berth::OpenSocket(options);
  }
  std::string allowed = "root";
  for (uid_t uid : options.allow_uids) allowed += ", uid " + std::to_string(uid);
  fprintf(stderr, "berth-helper: listening on %s (allowed: %s; ports %u-%u)\n",
          activated >= 0 ? "the activated socket" : options.socket_path.c_str(), allowed.c_str(),
          options.port_lo, options.port_hi);
  berth::Helper helper(options, std::move(opened.fd));
  helper.Run();
  // Only the socket it bound: whatever is at the path now may be another one's.
  if (!opened.bound.path.empty()) berth::RemoveOwnSocket(opened.bound);
  return 0;
}
