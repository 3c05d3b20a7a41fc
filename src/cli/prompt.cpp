#include "cli/prompt.hpp"

#include "cli/output.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <iterator>
#include <optional>

namespace neurod::cli {

namespace {

// What the signal handler needs to put the terminal back.
int g_echo_fd = -1;
termios g_saved_termios{};

extern "C" void restore_and_reraise(int sig) {
  if (g_echo_fd >= 0) ::tcsetattr(g_echo_fd, TCSANOW, &g_saved_termios);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};

class Terminal {
 public:
  Terminal() : fd_(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) {}
  ~Terminal() {
    if (fd_ >= 0) ::close(fd_);
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  bool open() const { return fd_ >= 0; }

  void write(std::string_view text) {
    while (!text.empty()) {
      auto n = ::write(fd_, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      text.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // nullopt at end of input with nothing read.
  std::optional<std::string> read_line() {
    std::string line;
    char c = 0;
    while (true) {
      auto n = ::read(fd_, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (line.empty()) return std::nullopt;
        break;
      }
      if (c == '\n') break;
      line.push_back(c);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  // Echo off (but the final newline still shown) while it lives, and back on after a
  // terminating signal. TCSANOW, not TCSAFLUSH: what was typed ahead is kept.
  class NoEcho {
   public:
    explicit NoEcho(int fd) {
      if (::tcgetattr(fd, &saved_) != 0) return;
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;
      g_saved_termios = saved_;
      g_echo_fd = fd;
      struct sigaction sa {};
      sa.sa_handler = restore_and_reraise;
      sigemptyset(&sa.sa_mask);
      for (std::size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
      if (::tcsetattr(fd, TCSANOW, &quiet) == 0) fd_ = fd;
    }
    ~NoEcho() {
      if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &saved_);
      if (g_echo_fd >= 0) {
        g_echo_fd = -1;
        for (std::size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
      }
    }
    NoEcho(const NoEcho&) = delete;
    NoEcho& operator=(const NoEcho&) = delete;

   private:
    int fd_ = -1;
    termios saved_{};
    struct sigaction old_[std::size(kSignals)]{};
  };

  int fd() const { return fd_; }

 private:
  int fd_;
};

std::string ask(std::string_view prompt, std::string_view hint, bool secret) {
  Terminal tty;
  if (!tty.open()) {
    std::string what(prompt);
    while (!what.empty() && (what.back() == ' ' || what.back() == ':')) what.pop_back();
    throw CliError(Exit::usage, "cannot ask \"" + what + "\": there is no terminal. " + std::string(hint));
  }
  std::optional<std::string> line;
  if (secret) {
    Terminal::NoEcho quiet(tty.fd());  // before the prompt, so that nothing typed after it is echoed
    tty.write(prompt);
    line = tty.read_line();
  } else {
    tty.write(prompt);
    line = tty.read_line();
  }
  if (!line) {
    tty.write("\n");
    throw CliError(Exit::usage, "no answer was given");
  }
  return *line;
}

}  // namespace

std::string prompt_line(std::string_view prompt, std::string_view hint) { return ask(prompt, hint, false); }

std::string prompt_secret(std::string_view prompt, std::string_view hint) { return ask(prompt, hint, true); }

std::string prompt_new_password(std::string_view hint) {
  auto first = prompt_secret("New password: ", hint);
  if (first.empty()) throw CliError(Exit::usage, "the password must not be empty");
  auto second = prompt_secret("Repeat the new password: ", hint);
  if (first != second) throw CliError(Exit::usage, "the passwords do not match; nothing was changed");
  return first;
}

std::string read_stdin_secret(std::string_view option) {
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw CliError(Exit::usage, std::string(option) + ": nothing was read from stdin");
  return text;
}

void confirm(std::string_view question, bool yes) {
  if (yes) return;
  if (::isatty(STDIN_FILENO) != 1)
    throw CliError(Exit::usage, std::string(question) + " Refusing without --yes: stdin is not a terminal.");
  Terminal tty;
  if (!tty.open()) throw CliError(Exit::usage, std::string(question) + " Refusing without --yes: no terminal.");
  tty.write(std::string(question) + " [y/N] ");
  auto answer = tty.read_line().value_or("");
  if (answer != "y" && answer != "Y" && answer != "yes" && answer != "YES" && answer != "Yes")
    throw CliError(Exit::failure, "cancelled");
}

}  // namespace neurod::cli
