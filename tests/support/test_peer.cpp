#include "test_peer.hpp"

#include <boost/asio/ssl.hpp>
#include <websocketpp/config/asio.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/protocol.hpp"

namespace saltpeter::test {
namespace {
using Hdl = websocketpp::connection_hdl;
using HdlSet = std::set<Hdl, std::owner_less<Hdl>>;
namespace proto = saltpeter::protocol;

std::string now_ts() { return proto::format_timestamp(std::chrono::system_clock::now()); }

// What the scripted logic needs from a websocketpp server; implemented for ws:// and wss://.
struct ServerOps {
    virtual ~ServerOps() = default;
    virtual void send(Hdl hdl, const std::string& text) = 0;
    virtual void close(Hdl hdl, websocketpp::close::status::value code, const std::string& reason) = 0;
    virtual boost::asio::io_context& io() = 0;
    virtual void run() = 0;
    virtual void shutdown(const HdlSet& open) = 0;
    virtual int port() = 0;
};

}  // namespace

struct TestPeer::Impl {
    std::unique_ptr<ServerOps> ops;
    std::thread thread;
    int port = 0;
    mutable std::mutex mutex;
    PeerScript script;
    std::chrono::steady_clock::time_point refuse_until{};
    std::vector<std::string> frames;
    std::vector<std::string> types;
    std::string stored;
    long expected = 0;
    long outputs_received = 0;
    long long output_bytes = 0;
    std::optional<int> retcode;
    int connections = 0;
    bool nacked = false;
    HdlSet open;
    HdlSet closed_by_us;  // frames still arriving on these are ignored
    bool tls = false;
    Hdl newest;

    void send(Hdl hdl, const proto::ServerMessage& m) {
        ops->send(hdl, proto::serialize(m));
    }

    void send_ack_later(Hdl hdl, proto::Ack ack, int delay_ms) {
        if (delay_ms <= 0) {
            send(hdl, ack);
            return;
        }
        auto timer = std::make_shared<boost::asio::steady_timer>(ops->io());
        timer->expires_after(std::chrono::milliseconds(delay_ms));
        timer->async_wait([this, hdl, ack, timer](const boost::system::error_code& ec) {
            if (!ec) send(hdl, ack);
        });
    }

    void on_message(Hdl hdl, const std::string& text) {
        std::unique_lock<std::mutex> lock(mutex);
        if (closed_by_us.count(hdl)) return;
        frames.push_back(text);
        auto parsed = proto::parse_wrapper_frame(text);
        if (!parsed) {
            types.push_back("invalid");
            return;
        }
        types.emplace_back(proto::type_name(*parsed));
        if (auto* c = std::get_if<proto::Connect>(&*parsed)) {
            (void)c;
            proto::Ack ack{proto::AckType::connect, now_ts(), std::nullopt, std::nullopt, std::nullopt};
            if (script.proto2) {
                ack.proto = 2;
                ack.last_seq = expected - 1;
            } else {
                expected = 0;  // the original server resets its expectation on connect
            }
            lock.unlock();
            send(hdl, ack);
        } else if (std::get_if<proto::Start>(&*parsed)) {
            if (!script.ack_start) return;
            lock.unlock();
            send(hdl, proto::Ack{proto::AckType::start, now_ts(), std::nullopt, std::nullopt, std::nullopt});
        } else if (auto* o = std::get_if<proto::Output>(&*parsed)) {
            ++outputs_received;
            output_bytes += static_cast<long long>(o->data.size());
            const long seq = o->seq ? static_cast<long>(*o->seq) : -1;
            bool close_now = false;
            for (long n : script.close_after_outputs)
                if (n == outputs_received) close_now = true;
            if (close_now) {
                // The frame is lost with the connection: not stored, not acked.
                closed_by_us.insert(hdl);
                lock.unlock();
                ops->close(hdl, websocketpp::close::status::going_away, "scripted close");
                return;
            }
            if (seq == script.nack_seq_once && !nacked) {
                nacked = true;
                lock.unlock();
                send(hdl, proto::Nack{"out_of_order", expected, seq, now_ts()});
                return;
            }
            if (seq > expected) {
                const long exp = expected;
                lock.unlock();
                send(hdl, proto::Nack{"out_of_order", exp, seq, now_ts()});
                return;
            }
            if (seq == expected) {
                stored += o->data;
                ++expected;
            }
            if (!script.ack_outputs) return;
            const int delay = script.ack_delay_ms;
            lock.unlock();
            send_ack_later(hdl, proto::Ack{proto::AckType::output, now_ts(), seq, std::nullopt, std::nullopt}, delay);
        } else if (std::get_if<proto::SyncRequest>(&*parsed)) {
            const long last = expected - 1;
            lock.unlock();
            send(hdl, proto::SyncResponse{last, now_ts()});
        } else if (auto* c2 = std::get_if<proto::Complete>(&*parsed)) {
            if (script.job_not_found) {
                lock.unlock();
                send(hdl, proto::ServerError{"JOB_NOT_FOUND", "Job no longer exists on server (stopped or restarted)"});
                ops->close(hdl, websocketpp::close::status::normal, "");
                return;
            }
            if (!retcode) retcode = c2->retcode;
            if (!script.ack_complete) return;
            lock.unlock();
            send(hdl, proto::Ack{proto::AckType::complete, now_ts(), c2->seq, std::nullopt, std::nullopt});
        }
    }
};

namespace {

template <typename Config>
class Backend final : public ServerOps {
public:
    using Server = websocketpp::server<Config>;

    Backend(TestPeer::Impl* impl, const PeerTls& tls) {
        m_server.clear_access_channels(websocketpp::log::alevel::all);
        m_server.clear_error_channels(websocketpp::log::elevel::all);
        m_server.init_asio();
        m_server.set_reuse_addr(true);
        m_server.set_max_message_size(64 * 1024 * 1024);
        m_server.set_validate_handler([impl](Hdl) {
            std::lock_guard<std::mutex> lock(impl->mutex);
            return std::chrono::steady_clock::now() >= impl->refuse_until;
        });
        m_server.set_open_handler([impl](Hdl hdl) {
            std::lock_guard<std::mutex> lock(impl->mutex);
            ++impl->connections;
            impl->open.insert(hdl);
            impl->newest = hdl;
        });
        m_server.set_close_handler([impl](Hdl hdl) {
            std::lock_guard<std::mutex> lock(impl->mutex);
            impl->open.erase(hdl);
        });
        m_server.set_message_handler(
            [impl](Hdl hdl, typename Server::message_ptr msg) { impl->on_message(hdl, msg->get_payload()); });
        set_tls(tls);
        m_server.listen(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
        m_server.start_accept();
    }
    void send(Hdl hdl, const std::string& text) override {
        websocketpp::lib::error_code ec;
        m_server.send(hdl, text, websocketpp::frame::opcode::text, ec);
    }
    void close(Hdl hdl, websocketpp::close::status::value code, const std::string& reason) override {
        websocketpp::lib::error_code ec;
        m_server.close(hdl, code, reason, ec);
    }
    boost::asio::io_context& io() override { return m_server.get_io_service(); }
    void run() override { m_server.run(); }
    void shutdown(const HdlSet& open) override {
        websocketpp::lib::error_code ec;
        m_server.stop_listening(ec);
        for (const auto& h : open) m_server.close(h, websocketpp::close::status::going_away, "", ec);
        m_server.stop();
    }
    int port() override {
        websocketpp::lib::asio::error_code ec;
        return m_server.get_local_endpoint(ec).port();
    }

private:
    void set_tls(const PeerTls& tls) {
        if constexpr (std::is_same_v<Config, websocketpp::config::asio_tls>) {
            m_server.set_tls_init_handler([tls](Hdl) {
                namespace ssl = boost::asio::ssl;
                auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
                ctx->use_certificate_chain_file(tls.cert_file);
                ctx->use_private_key_file(tls.key_file, ssl::context::pem);
                return ctx;
            });
        } else {
            (void)tls;
        }
    }
    Server m_server;
};

}  // namespace

TestPeer::TestPeer(PeerScript script, PeerTls tls) : m_impl(std::make_unique<Impl>()) {
    m_impl->script = script;
    if (tls.cert_file.empty())
        m_impl->ops = std::make_unique<Backend<websocketpp::config::asio>>(m_impl.get(), tls);
    else
        m_impl->ops = std::make_unique<Backend<websocketpp::config::asio_tls>>(m_impl.get(), tls);
    m_impl->tls = !tls.cert_file.empty();
    m_impl->port = m_impl->ops->port();
    Impl* impl = m_impl.get();
    m_impl->thread = std::thread([impl] { impl->ops->run(); });
}

TestPeer::~TestPeer() {
    Impl* impl = m_impl.get();
    boost::asio::post(impl->ops->io(), [impl] { impl->ops->shutdown(impl->open); });
    m_impl->thread.join();
}

int TestPeer::port() const { return m_impl->port; }
std::string TestPeer::url() const {
    return std::string(m_impl->tls ? "wss://localhost:" : "ws://127.0.0.1:") + std::to_string(m_impl->port);
}

void TestPeer::set_script(const PeerScript& script) {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    m_impl->script = script;
}

void TestPeer::refuse_for(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    m_impl->refuse_until = std::chrono::steady_clock::now() + d;
}

void TestPeer::send_kill() {
    Impl* impl = m_impl.get();
    boost::asio::post(impl->ops->io(), [impl] {
        Hdl h;
        {
            std::lock_guard<std::mutex> lock(impl->mutex);
            h = impl->newest;
        }
        impl->send(h, proto::Kill{proto::Envelope{"", "", "", now_ts()}});
    });
}

void TestPeer::close_all() {
    Impl* impl = m_impl.get();
    boost::asio::post(impl->ops->io(), [impl] {
        HdlSet all;
        {
            std::lock_guard<std::mutex> lock(impl->mutex);
            all = impl->open;
        }
        for (const auto& h : all) impl->ops->close(h, websocketpp::close::status::going_away, "");
    });
}

std::vector<std::string> TestPeer::frames() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->frames;
}
std::vector<std::string> TestPeer::frame_types() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->types;
}
std::string TestPeer::output() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->stored;
}
std::optional<int> TestPeer::retcode() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->retcode;
}
long TestPeer::output_frames() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->outputs_received;
}
long long TestPeer::output_bytes() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->output_bytes;
}
int TestPeer::connections() const {
    std::lock_guard<std::mutex> lock(m_impl->mutex);
    return m_impl->connections;
}

bool TestPeer::wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) const {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

}  // namespace saltpeter::test
