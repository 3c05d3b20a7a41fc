// The shared machinery of exec and attach sessions (executor.hpp, "Interactive sessions"):
// one thread per session running a poll() loop over the session's descriptors, so that
// stdin writes never block the caller and a slow reader never blocks the job. Runners
// subclass IoSession, fill in the descriptors and hooks, and keep a SessionSet so that
// shutdown() ends every session and waits for its thread. Internal to the executor.
#pragma once

#include "modules/executor/executor.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>

namespace neurod::executor {

class IoSession;

// The live sessions of one runner.
class SessionSet {
 public:
  ~SessionSet() { shutdown(); }
  // Cancels every session and waits for their threads; later starts are refused.
  void shutdown();

 private:
  friend class IoSession;
  bool enter(IoSession* s);  // false after shutdown
  void leave(IoSession* s);
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<IoSession*> live_;
  bool closed_ = false;
};

class IoSession : public Session, public std::enable_shared_from_this<IoSession> {
 public:
  IoSession(SessionSet& set, SessionCallbacks callbacks);
  ~IoSession() override;

  void start() override;
  void write_stdin(std::string data) override;
  void close_stdin() override;
  void resize(unsigned height, unsigned width) override;
  void cancel() override;

 protected:
  // Filled in by the subclass before start(). The session owns (closes) every descriptor.
  struct Source {
    int fd = -1;
    int stream = 1;  // 1 stdout, 2 stderr, 0: on_raw() decodes it
  };
  std::vector<Source> sources_;  // read until EOF; the session ends when all are at EOF...
  int wait_fd_ = -1;             // ...or, when set (a pidfd), once it is readable
  int in_fd_ = -1;               // stdin goes here (may also be a source: a socket or a pty)
  Duration tick_{0};             // > 0: on_tick() this often

  // Hooks, all on the session's thread.
  // First: what may block (call the engine, start a process); it fills in the descriptors
  // (or may have been done before start()). An Error ends the session with its message.
  virtual void prepare() {}
  virtual void on_raw(std::string_view data) { emit(1, data); }
  virtual void on_tick() {}
  virtual void do_resize(unsigned /*height*/, unsigned /*width*/) {}
  // Default: close in_fd_, or shut its writing half when it is also a source.
  virtual void do_close_stdin();
  // The outcome once the session ended by itself: exit code, or nullopt and a message.
  virtual std::pair<std::optional<int>, std::string> finish() = 0;
  // After cancel() (or shutdown): end what the session started (kill an exec'd process).
  virtual void teardown() {}

  void emit(int stream, std::string_view data);
  void end_now() { end_requested_ = true; }  // from a hook: finish now
  bool cancelled() const { return cancelled_.load(); }

 private:
  void run();
  void wake();
  void close_fds();

  SessionSet& set_;
  SessionCallbacks callbacks_;
  int wake_r_ = -1, wake_w_ = -1;
  std::mutex mu_;
  std::deque<std::string> pending_;  // stdin not written yet
  std::size_t pending_offset_ = 0;   // of pending_.front()
  bool stdin_close_ = false;         // close once pending_ is written
  std::optional<std::pair<unsigned, unsigned>> resize_;
  std::atomic<bool> cancelled_{false};
  bool end_requested_ = false;
  bool started_ = false;
};

}  // namespace neurod::executor
