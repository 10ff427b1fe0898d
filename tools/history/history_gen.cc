// history_gen: writes a generated sales history (history.h) as a command file for
// `leadctl batch` (one leadflow.v1.Command as JSON per line), with progress on stderr.
//   history_gen --leads 100000 --days 365 --seed 7 --out history.jsonl
// The file names leads by the ids they get under the history's id key (kHistoryIdKey): load it
// into a leadflow started with that key (--ids-key-out writes it to a file for
// `leadflow serve --ids-key-file`).
#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "tools/history/history.h"

int main(int argc, char** argv) {
  CLI::App app{"Generate a realistic sales history as a leadctl batch file"};
  leadflow::history::HistoryOptions o;
  std::string out = "-";
  std::string end;
  app.add_option("--leads", o.leads, "Leads")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--days", o.days, "Days the captures spread over")
      ->capture_default_str()
      ->check(CLI::Range(1, 3660));
  app.add_option("--seed", o.seed, "Seed: the same seed gives the same history")
      ->capture_default_str();
  std::string key_out;
  app.add_option("--ids-key-out", key_out,
                 "Write the history's lead id key to this file, for leadflow serve --ids-key-file "
                 "(the history names leads by the ids they get under it)");
  app.add_option("--end", end, "Last day, exclusive (YYYY-MM-DD; default: today, UTC)");
  app.add_option("--out", out, "Output file, - for stdout")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (end.empty()) {
    o.end =
        absl::FromCivil(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()), absl::UTCTimeZone());
  } else {
    absl::CivilDay day;
    if (!absl::ParseCivilTime(end, &day)) {
      std::cerr << "--end: expected YYYY-MM-DD, got '" << end << "'\n";
      return 2;
    }
    o.end = absl::FromCivil(day, absl::UTCTimeZone());
  }
  std::ofstream file;
  if (out != "-") {
    file.open(out);
    if (!file) {
      std::cerr << "--out: cannot write " << out << "\n";
      return 2;
    }
  }
  std::ostream& sink = out == "-" ? std::cout : file;
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  int64_t commands = 0;
  const absl::Time start = absl::Now();
  absl::Time last = start;
  std::string line;
  leadflow::history::Generate(o, [&](int64_t lead, std::vector<leadflow::v1::Command>& batch) {
    for (const leadflow::v1::Command& c : batch) {
      line.clear();
      (void)google::protobuf::util::MessageToJsonString(c, &line, json);
      sink << line << '\n';
    }
    commands += static_cast<int64_t>(batch.size());
    if (absl::Now() - last > absl::Milliseconds(250) || lead + 1 == o.leads) {
      last = absl::Now();
      std::cerr << absl::StreamFormat(
          "\rhistory_gen: %3.0f%%  %lld/%lld leads  %lld commands", 100.0 * (lead + 1) / o.leads,
          static_cast<long long>(lead + 1), static_cast<long long>(o.leads),
          static_cast<long long>(commands));
    }
    return static_cast<bool>(sink);
  });
  std::cerr << absl::StreamFormat("\nhistory_gen: %lld commands in %.1f s\n",
                                  static_cast<long long>(commands),
                                  absl::ToDoubleSeconds(absl::Now() - start));
  if (!key_out.empty()) {
    std::ofstream key(key_out, std::ios::trunc);
    key << leadflow::history::kHistoryIdKey << "\n";
    if (!key) {
      std::cerr << "history_gen: cannot write " << key_out << "\n";
      return 1;
    }
  }
  std::cerr << "history_gen: load it into a leadflow started with --ids-key-file holding the "
               "history's key ("
            << (key_out.empty() ? std::string("--ids-key-out writes it") : key_out) << ")\n";
  return sink ? 0 : 1;
}
