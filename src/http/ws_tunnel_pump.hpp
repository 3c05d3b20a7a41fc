// Internal to src/http (includes Beast): carries raw bytes between a WebSocket and a
// connected stream socket, on one event loop, with one buffer each way and no other queue: each side
// reads only after its previous write finished, so the slower side sets the pace (TCP
// flow control does the rest). Used by the server (WebSocketHandler::tunnel_fd, the
// port-forward routes) and by the CLI's tunnel client (ws_tunnel.hpp).
//
// Protocol (see WebSocketHandler::tunnel_fd): binary messages carry data; an empty binary
// message means "no more data from me" (the receiver shuts the fd's write side); a close
// ends the whole tunnel. What happens at the end of data read from the fd is the caller's
// choice: the server closes the WebSocket (the target is done), the client sends the empty
// message and keeps receiving (a half-close: the request went out, the answer may follow).
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace neurod::http::detail {

struct TunnelState {
  // Takes ownership of `socket_fd`, a connected stream socket (TCP or unix). As a socket
  // (not a plain descriptor) its writes use MSG_NOSIGNAL: a peer gone is an error, not SIGPIPE.
  TunnelState(boost::asio::any_io_executor ex, int socket_fd) : fd(ex), done(ex) {
    done.expires_at(boost::asio::steady_timer::time_point::max());
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int family = ::getsockname(socket_fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 ? addr.ss_family : AF_UNIX;
    boost::system::error_code ec;
    fd.assign(boost::asio::generic::stream_protocol(family, SOCK_STREAM), socket_fd, ec);
    if (ec) ::close(socket_fd);
  }
  boost::asio::generic::stream_protocol::socket fd;
  boost::asio::steady_timer done;  // cancelled when the fd→ws side finished
  bool reader_done = false;
  bool stop = false;  // set on the loop: the fd→ws side must end (and close the WebSocket)
  int close_code = 1000;
  std::uint64_t to_ws = 0;    // bytes read from the fd and sent
  std::uint64_t from_ws = 0;  // bytes received and written to the fd

  // From the loop only: ends the tunnel (the fd→ws side closes the WebSocket).
  void end(int code) {
    if (stop) return;
    stop = true;
    close_code = code;
    boost::system::error_code ec;
    fd.cancel(ec);
  }
};

constexpr std::size_t kTunnelChunk = 256 * 1024;

// Runs until both directions ended. `fd_eof_closes`: see the file comment.
template <class WsStream>
boost::asio::awaitable<void> run_tunnel(WsStream& ws, std::shared_ptr<TunnelState> st, bool fd_eof_closes) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace websocket = boost::beast::websocket;
  auto ex = co_await asio::this_coro::executor;
  ws.binary(true);
  ws.auto_fragment(false);

  // fd → WebSocket
  asio::co_spawn(
      ex,
      [st, &ws, fd_eof_closes]() -> asio::awaitable<void> {
        std::unique_ptr<char[]> buf(new char[kTunnelChunk]);
        boost::system::error_code fec, wec;
        bool half_closed = false;
        while (!st->stop) {
          std::size_t n =
              co_await st->fd.async_read_some(asio::buffer(buf.get(), kTunnelChunk), asio::redirect_error(asio::use_awaitable, fec));
          if (fec) break;
          co_await ws.async_write(asio::buffer(buf.get(), n), asio::redirect_error(asio::use_awaitable, wec));
          if (wec) break;
          st->to_ws += n;
        }
        if (!wec && fec == asio::error::eof && !fd_eof_closes && !st->stop) {
          // Half-close: tell the peer, keep receiving; the other side ends the tunnel.
          co_await ws.async_write(asio::buffer(buf.get(), 0), asio::redirect_error(asio::use_awaitable, wec));
          half_closed = !wec;
        }
        if (!half_closed && ws.is_open()) {
          st->stop = true;
          co_await ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(st->close_code)),
                                  asio::redirect_error(asio::use_awaitable, wec));
        }
        st->reader_done = true;
        st->done.cancel();
      },
      asio::detached);

  // WebSocket → fd
  beast::flat_buffer buf;
  boost::system::error_code ec;
  for (;;) {
    co_await ws.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    if (buf.size() == 0) {
      boost::system::error_code sec;
      st->fd.shutdown(boost::asio::socket_base::shutdown_send, sec);
      continue;
    }
    std::size_t n = buf.size();
    co_await asio::async_write(st->fd, buf.data(), asio::redirect_error(asio::use_awaitable, ec));
    buf.consume(buf.size());
    if (ec) {
      st->end(1011);
      break;
    }
    st->from_ws += n;
  }
  // The peer closed or went away, or the fd failed: the other direction ends too.
  st->end(st->close_code);
  if (!st->reader_done) co_await st->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace neurod::http::detail
