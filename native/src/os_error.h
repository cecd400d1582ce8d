// Errors as plain data, for the code below the N-API layer: a failed system call (OsError) and the failures
// a relay counts in the loop, where there is no caller to throw to (ErrorLog). napi_util.h turns both into
// Node-style values.
#ifndef BERTH_NATIVE_OS_ERROR_H_
#define BERTH_NATIVE_OS_ERROR_H_

#include <stdint.h>

#include <string>

namespace berth {

// A system call that failed: its errno (positive; 0 means success), its name, and what it was done to.
struct OsError {
  int error = 0;
  const char* syscall = "";
  std::string what;

  explicit operator bool() const { return error != 0; }
};

// The errors a relay counts: stats().errors and stats().lastError. Strings are static (a syscall's name, a
// relay's own code), so recording one allocates nothing.
class ErrorLog {
 public:
  // A failed system call.
  void RecordErrno(int error, const char* syscall) { Record(nullptr, error, syscall); }

  // A relay's own failure, with a code of its own ("EMAXCONN") and no errno.
  void RecordCode(const char* code) { Record(code, 0, ""); }

  uint64_t count() const { return count_; }
  bool has_last() const { return count_ > 0; }
  // nullptr when the last error is an errno (its Node code is its name).
  const char* last_code() const { return code_; }
  int last_errno() const { return error_; }  // positive; 0 for a relay's own code
  const char* last_syscall() const { return syscall_; }

 private:
  void Record(const char* code, int error, const char* syscall) {
    count_ += 1;
    code_ = code;
    error_ = error;
    syscall_ = syscall;
  }

  uint64_t count_ = 0;
  const char* code_ = nullptr;
  int error_ = 0;
  const char* syscall_ = "";
};

}  // namespace berth

#endif  // BERTH_NATIVE_OS_ERROR_H_
