// Child processes for the benchmark suite: the real `leadflow` binary (and PostgreSQL) run as
// children so that each one's peak RSS is its own, not the client's.
#ifndef LEADFLOW_TOOLS_BENCH_SUITE_PROC_H_
#define LEADFLOW_TOOLS_BENCH_SUITE_PROC_H_

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace leadflow::bench {

struct ChildExit {
  int status = 0;           // as from waitpid
  double seconds = 0;       // wall time from spawn to exit
  double peak_rss_mib = 0;  // the child's VmHWM, last sampled before it exited
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string Describe() const {
    if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
    return "unknown exit";
  }
};

class Child {
 public:
  // Starts argv[0] (a path) with stdout and stderr appended to `log_path`. `user`: run as this
  // user (only when we are root; PostgreSQL refuses to run as root).
  static absl::StatusOr<Child> Spawn(const std::vector<std::string>& argv,
                                     const std::string& log_path, const std::string& user = "") {
    uid_t uid = 0;
    gid_t gid = 0;
    const bool switch_user = !user.empty() && geteuid() == 0;
    if (switch_user) {
      struct passwd* pw = getpwnam(user.c_str());
      if (pw == nullptr) return absl::NotFoundError(absl::StrCat("no user '", user, "'"));
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
    Child c;
    c.started_ = absl::Now();
    c.pid_ = fork();
    if (c.pid_ < 0) return absl::InternalError("fork failed");
    if (c.pid_ == 0) {
      const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      if (switch_user && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
        _exit(126);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    c.command_ = absl::StrJoin(argv, " ");
    return c;
  }

  pid_t pid() const { return pid_; }
  const std::string& command() const { return command_; }
  bool running() const { return pid_ > 0; }

  // True if the child has exited (its exit is then kept for Wait()).
  bool Exited() {
    if (pid_ <= 0) return true;
    if (exited_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      Record(status);
      return true;
    }
    return false;
  }

  // Polls until the child exits, sampling its peak RSS on the way.
  ChildExit Wait() {
    while (!Exited()) {
      SampleRss();
      absl::SleepFor(absl::Milliseconds(20));
    }
    return exit_;
  }

  // Reads the child's VmHWM (peak resident set of its own address space). rusage's ru_maxrss
  // cannot be used: after fork+exec it also counts this parent's memory at the fork.
  void SampleRss() {
    if (pid_ <= 0 || exited_) return;
    std::ifstream status(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) == 0) {
        const double mib = std::atof(line.c_str() + 6) / 1024.0;  // kB
        if (mib > exit_.peak_rss_mib) exit_.peak_rss_mib = mib;
        return;
      }
    }
  }

  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  ChildExit Stop(absl::Duration grace = absl::Seconds(20), int sig = SIGTERM) {
    if (pid_ <= 0 || Exited()) return Wait();
    SampleRss();
    kill(pid_, sig);
    const absl::Time deadline = absl::Now() + grace;
    while (!Exited() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    if (!Exited()) kill(pid_, SIGKILL);
    return Wait();
  }

 private:
  void Record(int status) {
    exited_ = true;
    exit_.status = status;
    exit_.seconds = absl::ToDoubleSeconds(absl::Now() - started_);
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  ChildExit exit_;
  absl::Time started_;
  std::string command_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// Bytes of all regular files under `dir` (0 if missing).
inline uint64_t DiskBytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  if (!std::filesystem::exists(dir, ec)) return 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

}  // namespace leadflow::bench

#endif  // LEADFLOW_TOOLS_BENCH_SUITE_PROC_H_
