// leadflow: the service binary. Flags are read here and nowhere else.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/server/node.h"

namespace {

constexpr char kVersion[] = "0.1.0";

int Serve(leadflow::server::NodeOptions options) {
  options.say = [](const std::string& line) { std::cerr << "leadflow: " << line << std::endl; };
  // Block the shutdown signals in every thread; a dedicated thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto node = leadflow::server::Node::Start(options);
  if (!node.ok()) {
    std::cerr << "leadflow: cannot start: " << node.status().message() << std::endl;
    return 1;
  }
  std::cerr << "leadflow: serving gRPC on " << options.listen.substr(0, options.listen.rfind(':'))
            << ":" << (*node)->port() << " (health checking and reflection enabled); "
            << "Ctrl-C to stop" << std::endl;

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::cerr << "leadflow: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": draining in-flight requests (up to 10s; signal again to force)" << std::endl;
    std::thread force([&] {
      int again = 0;
      sigwait(&signals, &again);
      std::cerr << "leadflow: forced exit" << std::endl;
      std::_Exit(2);
    });
    force.detach();
    (*node)->Shutdown(absl::Seconds(10));
  });
  (*node)->Wait();
  waiter.join();
  node->reset();  // flushes the log and closes the stores before exit
  std::cerr << "leadflow: stopped cleanly" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"leadflow: event-sourced lead lifecycle service"};
  app.require_subcommand(1);
  leadflow::server::NodeOptions o;

  CLI::App* serve = app.add_subcommand("serve", "Run the service (all roles in one process)");
  serve->add_option("--data-dir", o.data_dir, "Directory for the embedded log and view stores")
      ->capture_default_str();
  serve->add_option("--listen", o.listen, "gRPC listen address (port 0 = any free port)")
      ->capture_default_str();
  serve->add_option("--partitions", o.partitions,
                    "Partitions of a new embedded log; with Kafka, the count the topic must have")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  bool no_sync = false;
  serve->add_flag("--no-sync", no_sync,
                  "Embedded log: do not fsync each append (a machine crash may lose the last "
                  "appends; a process crash loses nothing)");
  serve->add_option("--kafka-brokers", o.kafka_brokers,
                    "Use Kafka at these bootstrap servers instead of the embedded log");
  serve->add_option("--kafka-topic", o.kafka_topic, "Kafka topic of the events")
      ->capture_default_str();
  serve->add_option("--kafka-transactional-id", o.kafka_transactional_id,
                    "Prefix of the writer's Kafka transactional id")
      ->capture_default_str();
  std::vector<std::string> kafka_props;
  serve->add_option("--kafka-property", kafka_props,
                    "Extra librdkafka property KEY=VALUE (repeatable), e.g. security.protocol=ssl");
  std::string role = "all";
  serve->add_option("--role", role,
                    "all (writer and views), writer (commands only) or views (queries only; "
                    "needs --kafka-brokers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "writer", "views"}));
  serve->add_flag("--kafka-mock", o.kafka_mock,
                  "Start an in-process Kafka mock cluster (loopback TCP) and use it; for demos "
                  "and tests, not production");

  CLI::App* rebuild = app.add_subcommand(
      "rebuild", "Rebuild views from offset zero into fresh stores and swap them in (stop "
                 "`leadflow serve` first)");
  std::string rebuild_view = "all";
  rebuild->add_option("--view", rebuild_view, "lead, customer, funnel, reprocessing or all")->capture_default_str();
  rebuild->add_option("--data-dir", o.data_dir, "Data directory")->capture_default_str();
  rebuild->add_option("--partitions", o.partitions, "Partitions of the log")
      ->capture_default_str();
  rebuild->add_option("--kafka-brokers", o.kafka_brokers, "Rebuild from Kafka");
  rebuild->add_option("--kafka-topic", o.kafka_topic, "Kafka topic")->capture_default_str();

  CLI::App* version = app.add_subcommand("version", "Print the version");
  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::cout << "leadflow " << kVersion << std::endl;
    return 0;
  }
  if (rebuild->parsed()) {
    std::vector<std::string> views = {rebuild_view};
    if (rebuild_view == "all") views = {"lead", "customer", "funnel", "reprocessing"};
    const absl::Time start = absl::Now();
    absl::Time last = absl::InfinitePast();
    std::string current;
    absl::Time view_start = start;
    auto progress = [&](const std::string& view, int64_t applied, int64_t total) {
      if (view != current) {
        if (!current.empty()) std::cerr << "\n";
        current = view;
        view_start = absl::Now();
      }
      const absl::Time now = absl::Now();
      if (now - last < absl::Milliseconds(200) && applied < total) return;
      last = now;
      const double secs = std::max(1e-3, absl::ToDoubleSeconds(now - view_start));
      const double rate = applied / secs;
      const double eta = rate > 0 ? (total - applied) / rate : 0;
      std::cerr << absl::StreamFormat(
          "\rrebuilding %s %3.0f%%  %lld/%lld events  %.0f events/s  ETA %.0fs   ", view,
          total > 0 ? 100.0 * applied / total : 100.0, static_cast<long long>(applied),
          static_cast<long long>(total), rate, eta);
    };
    absl::Status st = leadflow::server::RebuildViews(o, views, progress);
    if (!current.empty()) std::cerr << "\n";
    if (!st.ok()) {
      std::cerr << "leadflow: rebuild failed: " << st.message() << std::endl;
      return 1;
    }
    std::cerr << "leadflow: rebuilt " << rebuild_view << " in "
              << absl::ToInt64Milliseconds(absl::Now() - start) << " ms; views swapped in"
              << std::endl;
    return 0;
  }
  o.sync = !no_sync;
  o.role = role == "writer"  ? leadflow::server::NodeOptions::Role::kWriter
           : role == "views" ? leadflow::server::NodeOptions::Role::kViews
                             : leadflow::server::NodeOptions::Role::kAll;
  for (const std::string& kv : kafka_props) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty() || kv.find('=') == std::string::npos) {
      std::cerr << "--kafka-property: expected KEY=VALUE, got '" << kv << "'" << std::endl;
      return 2;
    }
    o.kafka_properties.push_back(std::move(p));
  }
  if (o.kafka_mock && !o.kafka_brokers.empty()) {
    std::cerr << "--kafka-mock and --kafka-brokers exclude each other" << std::endl;
    return 2;
  }
  return Serve(std::move(o));
}
