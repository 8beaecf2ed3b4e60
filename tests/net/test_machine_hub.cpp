// MachineHub over loopback (PROTOCOL.md 1.3, 1.4 REC, 1.7, 5.3, 5.5): scripted WebSocket clients on
// the test thread's io_context, a recording listener, and a watchdog so that no case can hang.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "hub_test_client.hpp"
#include "recording_hub_listener.hpp"
#include "runs/machine_hub.hpp"
#include "core/protocol.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using saltpeter::Admission;
using saltpeter::HubOptions;
using saltpeter::MachineHub;
using saltpeter::TargetKey;
using saltpeter::test::HubTestClient;
using saltpeter::test::RecordingHubListener;
namespace proto = saltpeter::protocol;

namespace {


const std::string k_ts = "2026-11-28T04:38:47.740437+00:00";

// A wrapper frame in the exact shape of PROTOCOL.md 1.3 (Python json.dumps separators).
std::string frame(const std::string& type, const std::string& instance, const std::string& extra = "",
                  const std::string& machine = "testhost") {
    return "{\"type\": \"" + type + "\", \"job_name\": \"demo\", \"job_instance\": \"" + instance +
           "\", \"machine\": \"" + machine + "\"" + extra + ", \"timestamp\": \"" + k_ts + "\"}";
}
std::string output_frame(const std::string& instance, std::int64_t seq, const std::string& data) {
    return frame("output", instance, ", \"stream\": \"stdout\", \"data\": \"" + data + "\", \"seq\": " + std::to_string(seq));
}
std::string connect2(const std::string& instance, const std::string& token, std::int64_t next_seq = 0) {
    return frame("connect", instance,
                 ", \"proto\": 2, \"next_seq\": " + std::to_string(next_seq) + ", \"token\": \"" + token + "\"");
}
std::string start_frame(const std::string& instance) { return frame("start", instance, ", \"pid\": 18538, \"version\": \"unknown\""); }
std::string complete_frame(const std::string& instance, int retcode, std::int64_t seq) {
    return frame("complete", instance, ", \"retcode\": " + std::to_string(retcode) + ", \"seq\": " + std::to_string(seq));
}

proto::ServerMessage parse(const std::string& text) {
    auto r = proto::parse_server_frame(text);
    REQUIRE_MESSAGE(r.ok(), text);
    return *r;
}
// "ack connect", "ack output 3", "nack 1 2", "sync -1", "kill", "error JOB_NOT_FOUND"
std::string summary(const std::string& text) {
    const auto m = parse(text);
    if (auto* a = std::get_if<proto::Ack>(&m)) {
        std::string s = "ack " + std::string(proto::to_string(a->ack_type));
        if (a->seq) s += " " + std::to_string(*a->seq);
        return s;
    }
    if (auto* n = std::get_if<proto::Nack>(&m)) return "nack " + std::to_string(n->expected_seq) + " " + std::to_string(n->received_seq);
    if (auto* r = std::get_if<proto::SyncResponse>(&m)) return "sync " + std::to_string(r->last_seq);
    if (std::get_if<proto::Kill>(&m)) return "kill";
    if (auto* e = std::get_if<proto::ServerError>(&m)) return "error " + e->code;
    return "?";
}
std::vector<std::string> summaries(const HubTestClient& c) {
    std::vector<std::string> out;
    for (const auto& t : c.received()) out.push_back(summary(t));
    return out;
}

// Writes the HTTP upgrade of `raw` and runs `io` until the hub counts the socket as open.
bool f_wait_open(boost::asio::io_context& io, MachineHub& hub, std::string& pending, boost::asio::ip::tcp::socket& raw) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (hub.stats().connections_open == 0) {
        if (std::chrono::steady_clock::now() > end) return false;
        if (!pending.empty()) {
            boost::system::error_code ec;
            pending.erase(0, raw.write_some(boost::asio::buffer(pending), ec));
        }
        io.restart();
        io.run_for(5ms);
    }
    return true;
}

struct Fixture {
    boost::asio::io_context io;
    RecordingHubListener listener;
    std::unique_ptr<MachineHub> hub;
    std::uint16_t port = 0;
    std::string secret = "s3cret";

    bool tls = false;

    explicit Fixture(bool require_token = true, std::size_t max_frame = 16u * 1024 * 1024, std::string tls_cert = "",
                     std::string tls_key = "", std::chrono::milliseconds idle_timeout = 60000ms) {
        HubOptions o;
        o.idle_timeout = idle_timeout;
        o.tls_cert = std::move(tls_cert);
        o.tls_key = std::move(tls_key);
        tls = !o.tls_cert.empty();
        o.bind_address = "127.0.0.1";
        o.port = 0;
        o.require_token = require_token;
        o.secret = secret;
        o.max_frame_bytes = max_frame;
        hub = std::make_unique<MachineHub>(io, o, listener);
        auto r = hub->listen();
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
        port = *r;
        REQUIRE(port != 0);
    }
    std::string token(const std::string& instance, const std::string& machine = "testhost") const {
        return saltpeter::wrapper_token(secret, instance, machine);
    }
    /// Runs the io_context until pred() holds; false after `limit`.
    bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5000ms) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > end) return false;
            io.restart();
            io.run_for(5ms);
        }
        return true;
    }
    /// Runs the io_context for `d` (to show that nothing more arrives).
    void pump_for(std::chrono::milliseconds d) {
        const auto end = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < end) {
            io.restart();
            io.run_for(5ms);
        }
    }
    std::unique_ptr<HubTestClient> client() {
        auto c = std::make_unique<HubTestClient>(io, port, tls);
        REQUIRE(pump_until([&] { return c->is_open() || c->is_closed(); }));
        REQUIRE(c->is_open());
        return c;
    }
    /// Sends `text` and waits until `c` has received `count` frames in total.
    void exchange(HubTestClient& c, const std::string& text, std::size_t count) {
        REQUIRE(c.send(text));
        REQUIRE_MESSAGE(pump_until([&] { return c.received().size() >= count; }), text);
    }
};

}  // namespace

TEST_SUITE("machine_hub") {

TEST_CASE("proto-2 wrapper: token, handshake, outputs, complete acked only once stored") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f;
    f.listener.store_at_once = false;
    auto c = f.client();
    f.exchange(*c, connect2("demo_1", f.token("demo_1")), 1);
    auto ack = std::get<proto::Ack>(parse(c->received()[0]));
    CHECK(ack.ack_type == proto::AckType::connect);
    CHECK(ack.proto == 2);
    CHECK(ack.last_seq == -1);
    f.exchange(*c, start_frame("demo_1"), 2);
    CHECK(summary(c->received()[1]) == "ack start");
    for (int i = 0; i < 5; ++i) REQUIRE(c->send(output_frame("demo_1", i, "line " + std::to_string(i) + "\\n")));
    REQUIRE(f.pump_until([&] { return f.listener.pending_outputs.size() == 5; }));
    f.pump_for(50ms);
    CHECK(c->received().size() == 2);  // nothing acked before it is stored
    while (f.listener.store_next_output()) {}
    REQUIRE(f.pump_until([&] { return c->received().size() == 7; }));
    for (int i = 0; i < 5; ++i) CHECK(summary(c->received()[2 + i]) == "ack output " + std::to_string(i));
    CHECK(f.listener.output == "line 0\nline 1\nline 2\nline 3\nline 4\n");

    REQUIRE(c->send(complete_frame("demo_1", 3, 5)));
    REQUIRE(f.pump_until([&] { return f.listener.completes == 1; }));
    f.pump_for(100ms);
    CHECK(c->received().size() == 7);  // not before stored
    REQUIRE(f.listener.store_next_complete());
    REQUIRE(f.pump_until([&] { return c->received().size() == 8; }));
    CHECK(summary(c->received()[7]) == "ack complete 5");
    CHECK(f.listener.starts == 1);
    CHECK(f.listener.admitted.size() == 1);
    CHECK(f.listener.activity == 8);
    CHECK(f.hub->stats().frames_rejected == 0);
}

TEST_CASE("original wrapper, exact PROTOCOL 1.3 frames, wrapper_auth compatible") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    auto c = f.client();
    const std::string frames[] = {
        R"({"type": "connect", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "timestamp": "2026-11-28T04:38:47.740437+00:00"})",
        R"({"type": "start", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "pid": 18538, "version": "unknown", "timestamp": "2026-11-28T04:38:47.740601+00:00"})",
        R"({"type": "output", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "stream": "stdout", "data": "line 1\nline 2\n", "seq": 0, "timestamp": "2026-11-28T04:38:48.756361+00:00"})",
        R"({"type": "output", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "stream": "stdout", "data": "line 3\n", "seq": 1, "timestamp": "2026-11-28T04:38:49.756361+00:00"})",
        R"({"type": "complete", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "retcode": 3, "seq": 2, "timestamp": "2026-11-28T04:38:50.803468+00:00"})",
    };
    for (std::size_t i = 0; i < 5; ++i) f.exchange(*c, frames[i], i + 1);
    CHECK(summaries(*c) == std::vector<std::string>{"ack connect", "ack start", "ack output 0", "ack output 1", "ack complete 2"});
    // The original server's connect ack has no proto/last_seq; ours neither for a proto-less peer.
    CHECK(c->received()[0].find("proto") == std::string::npos);
    CHECK(f.listener.output == "line 1\nline 2\nline 3\n");
    CHECK(f.listener.events.back() == "complete 3");

    SUBCASE("the same frames with wrapper_auth required: rejected and closed") {
        Fixture g(true);
        auto d = g.client();
        REQUIRE(d->send(frames[0]));
        REQUIRE(g.pump_until([&] { return d->is_closed(); }));
        CHECK(d->remote_close_code() == 1008);
        CHECK(d->received().empty());
        CHECK(g.listener.admitted.empty());
        CHECK(g.hub->stats().frames_rejected == 1);
        // An original wrapper after a reconnect sends no connect at all: dropped too.
        auto e = g.client();
        REQUIRE(e->send(frames[2]));
        g.pump_for(100ms);
        CHECK(e->received().empty());
        CHECK(g.listener.events.empty());
    }
}

TEST_CASE("a wrong token is rejected even in compatible mode") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    auto c = f.client();
    std::string bad = f.token("demo_1");
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    REQUIRE(c->send(connect2("demo_1", bad)));
    REQUIRE(f.pump_until([&] { return c->is_closed(); }));
    CHECK(c->remote_close_code() == 1008);
    CHECK(c->received().empty());
    CHECK(f.listener.admitted.empty());
    // A token for another machine is wrong too.
    auto d = f.client();
    REQUIRE(d->send(connect2("demo_1", f.token("demo_1", "otherhost"))));
    REQUIRE(f.pump_until([&] { return d->is_closed(); }));
    CHECK(f.hub->stats().frames_rejected == 2);
    // The right one is accepted.
    auto e = f.client();
    f.exchange(*e, connect2("demo_1", f.token("demo_1")), 1);
    CHECK(summary(e->received()[0]) == "ack connect");
}

TEST_CASE("duplicates acked but not forwarded, gaps nacked, sync_response = last stored seq") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f;
    auto c = f.client();
    f.exchange(*c, connect2("demo_1", f.token("demo_1")), 1);
    f.exchange(*c, start_frame("demo_1"), 2);
    f.exchange(*c, frame("sync_request", "demo_1", ", \"last_acked_seq\": -1, \"next_seq\": 0"), 3);
    CHECK(summary(c->received()[2]) == "sync -1");
    f.exchange(*c, output_frame("demo_1", 0, "a"), 4);
    f.exchange(*c, output_frame("demo_1", 1, "b"), 5);
    f.exchange(*c, output_frame("demo_1", 0, "a"), 6);  // duplicate
    f.exchange(*c, output_frame("demo_1", 3, "d"), 7);  // gap
    f.exchange(*c, frame("sync_request", "demo_1", ", \"last_acked_seq\": 1, \"next_seq\": 4"), 8);
    CHECK(summaries(*c) == std::vector<std::string>{"ack connect", "ack start", "sync -1", "ack output 0", "ack output 1",
                                                    "ack output 0", "nack 2 3", "sync 1"});
    const auto nack = std::get<proto::Nack>(parse(c->received()[6]));
    CHECK(nack.nack_type == "out_of_order");
    CHECK(f.listener.output == "ab");
    CHECK(f.hub->stats().duplicates_acked == 1);
    CHECK(f.hub->stats().gaps_nacked == 1);

    SUBCASE("a duplicate of an output not stored yet is acked once it is stored") {
        f.listener.store_at_once = false;
        REQUIRE(c->send(output_frame("demo_1", 2, "c")));
        REQUIRE(c->send(output_frame("demo_1", 2, "c")));
        REQUIRE(c->send(frame("sync_request", "demo_1", ", \"last_acked_seq\": 1, \"next_seq\": 3")));
        REQUIRE(f.pump_until([&] { return c->received().size() == 9; }));
        CHECK(summary(c->received()[8]) == "sync 1");  // seq 2 is not stored yet
        REQUIRE(f.listener.store_next_output());
        REQUIRE(f.pump_until([&] { return c->received().size() == 11; }));
        CHECK(summary(c->received()[9]) == "ack output 2");
        CHECK(summary(c->received()[10]) == "ack output 2");
        CHECK(f.listener.output == "abc");
    }
}

TEST_CASE("reconnects: sequence kept per pair, kills to the newest socket after its handshake") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    auto a = f.client();
    f.exchange(*a, frame("connect", "demo_1"), 1);
    CHECK(f.hub->send_kill(TargetKey{"demo_1", "testhost"}, "demo"));  // queued: start not answered yet
    f.pump_for(50ms);
    CHECK(a->received().size() == 1);
    f.exchange(*a, start_frame("demo_1"), 3);
    CHECK(summaries(*a) == std::vector<std::string>{"ack connect", "ack start", "kill"});
    const auto kill = std::get<proto::Kill>(parse(a->received()[2]));
    CHECK(kill.envelope.job_name == "demo");
    CHECK(kill.envelope.job_instance == "demo_1");
    CHECK(kill.envelope.machine == "testhost");
    f.exchange(*a, output_frame("demo_1", 0, "a"), 4);
    f.exchange(*a, output_frame("demo_1", 1, "b"), 5);

    // PROTOCOL 1.7: the original wrapper reconnects and continues without connect/start.
    auto b = f.client();
    f.exchange(*b, output_frame("demo_1", 1, "b"), 1);  // resend of an output it had no ack for
    f.exchange(*b, output_frame("demo_1", 2, "c"), 2);
    CHECK(summaries(*b) == std::vector<std::string>{"ack output 1", "ack output 2"});
    CHECK(f.listener.output == "abc");
    CHECK(f.listener.admitted.size() == 1);
    CHECK(f.hub->send_kill(TargetKey{"demo_1", "testhost"}, "demo"));
    REQUIRE(f.pump_until([&] { return b->received().size() == 3; }));
    CHECK(summary(b->received()[2]) == "kill");
    CHECK(a->received().size() == 5);  // the old socket gets nothing more

    // Our wrapper on a fresh socket: proto-2 connect keeps the numbering, last_seq = 2.
    auto c = f.client();
    f.exchange(*c, connect2("demo_1", f.token("demo_1"), 3), 1);
    auto ack = std::get<proto::Ack>(parse(c->received()[0]));
    CHECK(ack.last_seq == 2);
    f.exchange(*c, output_frame("demo_1", 3, "d"), 2);
    CHECK(summary(c->received()[1]) == "ack output 3");
    CHECK(f.listener.output == "abcd");
    CHECK(f.listener.starts == 1);
    // A second start (ack lost) does not reset anything and is acked.
    f.exchange(*c, start_frame("demo_1"), 3);
    CHECK(summary(c->received()[2]) == "ack start");
    CHECK(f.listener.starts == 1);
    CHECK_FALSE(f.hub->send_kill(TargetKey{"demo_9", "testhost"}, "demo"));
    f.hub->forget(TargetKey{"demo_1", "testhost"});
    CHECK_FALSE(f.hub->send_kill(TargetKey{"demo_1", "testhost"}, "demo"));
}

TEST_CASE("a proto-less connect on a later socket restarts the numbering; stored output is kept") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    auto a = f.client();
    f.exchange(*a, frame("connect", "demo_1"), 1);
    f.exchange(*a, start_frame("demo_1"), 2);
    f.exchange(*a, output_frame("demo_1", 0, "a"), 3);
    f.exchange(*a, output_frame("demo_1", 1, "b"), 4);
    a->close();
    // A peer that numbers each socket from 0 after connect (1.7 REC for the original server).
    auto b = f.client();
    f.exchange(*b, frame("connect", "demo_1"), 1);
    f.exchange(*b, frame("sync_request", "demo_1", ", \"last_acked_seq\": -1, \"next_seq\": 0"), 2);
    f.exchange(*b, output_frame("demo_1", 0, "c"), 3);
    f.exchange(*b, output_frame("demo_1", 0, "c"), 4);
    CHECK(summaries(*b) == std::vector<std::string>{"ack connect", "sync -1", "ack output 0", "ack output 0"});
    CHECK(f.listener.output == "abc");
    CHECK(f.listener.starts == 1);
}

TEST_CASE("a peer that does not read is closed once its send queue passes the bound") {
    saltpeter::test::Watchdog dog(60s);
    boost::asio::io_context io;
    RecordingHubListener listener;
    HubOptions o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.require_token = false;
    o.max_send_queue_bytes = 16 * 1024;
    MachineHub hub(io, o, listener);
    const auto port = hub.listen().value();
    auto pump = [&] {
        io.restart();
        io.run_for(2ms);
    };

    boost::asio::ip::tcp::socket raw(io);
    raw.open(boost::asio::ip::tcp::v4());
    raw.set_option(boost::asio::socket_base::receive_buffer_size(4096));
    raw.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    raw.non_blocking(true);
    std::string pending =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    // One masked client text frame (RFC 6455 5.2), repeated: every one draws a sync_response.
    const std::string payload = frame("sync_request", "demo_1", ", \"last_acked_seq\": -1, \"next_seq\": 0");
    std::string ws_frame;
    ws_frame.push_back(static_cast<char>(0x81));
    ws_frame.push_back(static_cast<char>(0x80 | 126));
    ws_frame.push_back(static_cast<char>(payload.size() >> 8));
    ws_frame.push_back(static_cast<char>(payload.size() & 0xff));
    const char mask[4] = {0x11, 0x22, 0x33, 0x44};
    ws_frame.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) ws_frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));

    REQUIRE(f_wait_open(io, hub, pending, raw));
    const auto end = std::chrono::steady_clock::now() + 40s;
    bool write_failed = false;
    while (hub.stats().peers_closed == 0 && !write_failed && std::chrono::steady_clock::now() < end) {
        if (pending.size() < 64 * 1024)
            for (int i = 0; i < 200; ++i) pending += ws_frame;
        boost::system::error_code ec;
        const auto n = raw.write_some(boost::asio::buffer(pending), ec);
        if (!ec) pending.erase(0, n);
        else if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) write_failed = true;
        pump();
    }
    CHECK(hub.stats().peers_closed == 1);
    CHECK(hub.stats().warnings_logged == 1);
}

TEST_CASE("admission: unknown instance and machines that are not targets") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    f.listener.admissions["gone_1"] = Admission{Admission::Verdict::unknown, "", -1, false};
    f.listener.admissions["demo_2"] = Admission{Admission::Verdict::not_a_target, "demo", -1, false};
    auto c = f.client();
    REQUIRE(c->send(output_frame("gone_1", 0, "x")));
    REQUIRE(c->send(frame("heartbeat", "gone_1")));
    REQUIRE(c->send(output_frame("demo_2", 0, "y")));
    f.exchange(*c, complete_frame("gone_1", 0, 1), 1);
    const std::string job_not_found =
        R"j({"type":"error","code":"JOB_NOT_FOUND","message":"Job no longer exists on server (stopped or restarted)"})j";
    CHECK(c->received()[0] == job_not_found);
    REQUIRE(f.pump_until([&] { return c->is_closed(); }));
    CHECK(c->remote_close_code() == 1000);
    CHECK(f.listener.events.empty());
    CHECK(f.listener.activity == 0);
    CHECK(f.hub->stats().frames_rejected == 4);

    SUBCASE("our wrapper whose instance is gone gets JOB_NOT_FOUND with wrapper_auth required") {
        Fixture g(true);
        g.listener.admissions["gone_1"] = Admission{Admission::Verdict::unknown, "", -1, false};
        auto d = g.client();
        REQUIRE(d->send(connect2("gone_1", g.token("gone_1"))));  // not acked: no such run
        g.exchange(*d, complete_frame("gone_1", 0, 0), 1);
        CHECK(summary(d->received()[0]) == "error JOB_NOT_FOUND");
        REQUIRE(g.pump_until([&] { return d->is_closed(); }));
    }
    SUBCASE("restart recovery: last_seq and completed from the admission") {
        f.listener.admissions["old_1"] = Admission{Admission::Verdict::accept, "demo", 4, true};
        auto d = f.client();
        f.exchange(*d, output_frame("old_1", 4, "x"), 1);  // already stored before the restart
        f.exchange(*d, complete_frame("old_1", 0, 5), 2);
        CHECK(summaries(*d) == std::vector<std::string>{"ack output 4", "ack complete 5"});
        CHECK(f.listener.events.empty());
    }
}

TEST_CASE("a repeated complete is acked at once and reported once") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    f.listener.store_at_once = false;
    auto c = f.client();
    f.exchange(*c, frame("connect", "demo_1"), 1);
    f.exchange(*c, start_frame("demo_1"), 2);
    REQUIRE(c->send(complete_frame("demo_1", -15, 0)));
    REQUIRE(c->send(complete_frame("demo_1", -15, 0)));  // retry while the first is being stored
    REQUIRE(f.pump_until([&] { return f.listener.completes == 1; }));
    f.pump_for(50ms);
    CHECK(c->received().size() == 2);
    REQUIRE(f.listener.store_next_complete());
    REQUIRE(f.pump_until([&] { return c->received().size() == 4; }));
    // A retry on a fresh socket after the result is stored.
    auto d = f.client();
    f.exchange(*d, complete_frame("demo_1", -15, 0), 1);
    CHECK(summary(d->received()[0]) == "ack complete 0");
    CHECK(f.listener.completes == 1);
    CHECK(f.listener.events.back() == "complete -15");
}

TEST_CASE("hostile input: malformed, binary, unknown type, oversized frames and idle sockets") {
    saltpeter::test::Watchdog dog(60s);
    Fixture f(false);
    auto good = f.client();
    f.exchange(*good, frame("connect", "demo_1"), 1);
    f.exchange(*good, start_frame("demo_1"), 2);
    std::int64_t seq = 0;
    auto good_round = [&] {
        const std::size_t n = good->received().size();
        f.exchange(*good, output_frame("demo_1", seq, "ok"), n + 1);
        CHECK(summary(good->received()[n]) == "ack output " + std::to_string(seq));
        ++seq;
    };

    auto bad = f.client();
    const auto warnings0 = f.hub->stats().warnings_logged;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(bad->send("{not json"));
        REQUIRE(bad->send_binary(std::string("\x00\x01\x02", 3)));
        REQUIRE(bad->send(frame("launch_missiles", "demo_1")));
        REQUIRE(bad->send(R"({"type": "output", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "data": 5, "seq": "x", "timestamp": "t"})"));
    }
    good_round();
    REQUIRE(f.pump_until([&] { return f.hub->stats().frames_rejected == 12; }));
    CHECK(bad->is_open());
    // One report per kind of problem and socket: malformed (3 kinds of bad text) and binary.
    CHECK(f.hub->stats().warnings_logged - warnings0 == 2);

    // 200 TCP connections that never send a byte.
    std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> idle;
    for (int i = 0; i < 200; ++i) {
        auto s = std::make_unique<boost::asio::ip::tcp::socket>(f.io);
        boost::system::error_code ec;
        s->connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), f.port), ec);
        REQUIRE_FALSE(ec);
        idle.push_back(std::move(s));
    }
    good_round();

    // A 20 MiB frame: over the 16 MiB limit, that socket is closed with 1009.
    auto big = f.client();
    REQUIRE(big->send(output_frame("demo_1", 99, std::string(20u * 1024 * 1024, 'x'))));
    REQUIRE(f.pump_until([&] { return big->is_closed(); }, 20000ms));
    CHECK(big->remote_close_code() == 1009);
    good_round();
    CHECK(f.listener.output == "okokok");
    CHECK(f.hub->stats().frames_rejected == 13);
    CHECK(f.hub->stats().peers_closed >= 1);
    CHECK(good->is_open());
    CHECK(bad->is_open());
}

TEST_CASE("sockets without a valid frame are closed at the idle deadline, a socket that sent one stays open") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(true, 16u * 1024 * 1024, "", "", 400ms);
    const auto started = std::chrono::steady_clock::now();
    auto good = f.client();
    f.exchange(*good, connect2("demo_1", f.token("demo_1")), 1);
    CHECK(summary(good->received()[0]) == "ack connect");
    const auto warnings0 = f.hub->stats().warnings_logged;
    const auto closed0 = f.hub->stats().peers_closed;
    auto silent = f.client();     // handshake, then nothing
    auto garbage = f.client();    // only frames that do not parse
    REQUIRE(garbage->send("{not json"));
    REQUIRE(garbage->send_binary("\x01\x02"));
    auto unauth = f.client();     // a well-formed frame, but no authenticated connect (wrapper_auth required)
    REQUIRE(unauth->send(output_frame("demo_1", 0, "forged")));

    REQUIRE(f.pump_until([&] { return silent->is_closed() && garbage->is_closed() && unauth->is_closed(); }, 5000ms));
    // Not before the deadline.
    CHECK(std::chrono::steady_clock::now() - started >= 400ms);
    CHECK(silent->remote_close_code() == 1008);
    CHECK(garbage->remote_close_code() == 1008);
    CHECK(unauth->remote_close_code() == 1008);
    CHECK(f.hub->stats().peers_closed - closed0 == 3);
    // Each problem once per socket: idle x3, plus malformed and binary (garbage), unauthenticated.
    CHECK(f.hub->stats().warnings_logged - warnings0 == 6);
    REQUIRE(f.pump_until([&] { return f.hub->stats().connections_open == 1; }));

    // The authenticated socket outlives several deadlines and still works.
    f.pump_for(1000ms);
    CHECK(good->is_open());
    f.exchange(*good, output_frame("demo_1", 0, "ok"), 2);
    CHECK(summary(good->received()[1]) == "ack output 0");
    CHECK(f.listener.output == "ok");
}

TEST_CASE("idle_timeout 0: no deadline") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(true, 16u * 1024 * 1024, "", "", 0ms);
    auto silent = f.client();
    f.pump_for(600ms);
    CHECK(silent->is_open());
    CHECK(f.hub->stats().peers_closed == 0);
}

TEST_CASE("stop() with sockets open, and destroying the hub with stored() callbacks pending") {
    saltpeter::test::Watchdog dog(30s);
    Fixture f(false);
    f.listener.store_at_once = false;
    auto c = f.client();
    auto d = f.client();
    f.exchange(*c, frame("connect", "demo_1"), 1);
    REQUIRE(c->send(output_frame("demo_1", 0, "a")));
    REQUIRE(c->send(complete_frame("demo_1", 0, 1)));
    REQUIRE(f.pump_until([&] { return f.listener.completes == 1; }));

    SUBCASE("stop") {
        f.hub->stop();
        f.hub->stop();  // idempotent
        REQUIRE(f.pump_until([&] { return c->is_closed() && d->is_closed(); }));
        CHECK(f.listener.store_next_output());  // harmless after stop
        CHECK(f.listener.store_next_complete());
        CHECK_FALSE(f.hub->send_kill(TargetKey{"demo_1", "testhost"}, "demo"));
        CHECK(f.hub->stats().connections_open == 0);
        auto e = std::make_unique<HubTestClient>(f.io, f.port);
        REQUIRE(f.pump_until([&] { return e->is_closed() || e->is_open(); }));
        CHECK_FALSE(e->is_open());  // no longer listening
    }
    SUBCASE("destroy") {
        f.hub.reset();
        f.listener.store_next_output();
        f.listener.store_next_complete();
        REQUIRE(f.pump_until([&] { return c->is_closed() && d->is_closed(); }));
        f.pump_for(100ms);  // let the hub's last handlers run
    }
}

TEST_CASE("wss:// with tls_cert and tls_key") {
    saltpeter::test::Watchdog dog(60s);
    char tmpl[] = "/tmp/sp_hub_tls.XXXXXX";
    const char* dir = mkdtemp(tmpl);
    REQUIRE(dir != nullptr);
    const std::string cert = std::string(dir) + "/cert.pem";
    const std::string key = std::string(dir) + "/key.pem";
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                            " -out " + cert + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    {
        Fixture f(false, 16u * 1024 * 1024, cert, key);
        auto c = f.client();
        f.exchange(*c, frame("connect", "demo_1"), 1);
        f.exchange(*c, start_frame("demo_1"), 2);
        f.exchange(*c, output_frame("demo_1", 0, "secret output"), 3);
        CHECK(summaries(*c) == std::vector<std::string>{"ack connect", "ack start", "ack output 0"});
        CHECK(f.listener.output == "secret output");
        // A plain ws:// client cannot talk to a wss:// port.
        auto plain = std::make_unique<HubTestClient>(f.io, f.port, false);
        REQUIRE(f.pump_until([&] { return plain->is_closed() || plain->is_open(); }, 10000ms));
        CHECK_FALSE(plain->is_open());
        auto next = f.client();  // still serving
        f.exchange(*next, frame("sync_request", "demo_1", ", \"last_acked_seq\": 0, \"next_seq\": 1"), 1);
        CHECK(summary(next->received()[0]) == "sync 0");
    }
    std::remove(cert.c_str());
    std::remove(key.c_str());
    rmdir(dir);
}

TEST_CASE("listen errors name the address") {
    saltpeter::test::Watchdog dog(10s);
    Fixture f;
    RecordingHubListener l;
    HubOptions o;
    o.bind_address = "127.0.0.1";
    o.port = f.port;  // taken (reuse_addr does not allow two listeners)
    MachineHub second(f.io, o, l);
    auto r = second.listen();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("127.0.0.1:" + std::to_string(f.port)) != std::string::npos);
    o.port = 0;
    o.tls_cert = "/nonexistent/cert.pem";
    o.tls_key = "/nonexistent/key.pem";
    MachineHub tls(f.io, o, l);
    auto t = tls.listen();
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().message.find("/nonexistent/cert.pem") != std::string::npos);
    CHECK(t.error().field == "tls_cert");
    o.tls_key.clear();
    MachineHub half(f.io, o, l);
    auto h = half.listen();
    REQUIRE_FALSE(h.ok());
    CHECK(h.error().field == "tls_key");
    o.tls_cert.clear();
    o.tls_key.clear();
    o.bind_address = "not-an-address";
    MachineHub bad(f.io, o, l);
    CHECK_FALSE(bad.listen().ok());
}

}  // TEST_SUITE
