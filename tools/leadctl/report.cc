#include "tools/leadctl/report.h"

#include <limits>
#include <utility>
#include <vector>

#include <utf8proc.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "services/common/enum_names.h"
#include "services/common/time_util.h"
#include "tools/leadctl/parse.h"

namespace leadflow::leadctl {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Left-aligned columns, two spaces apart; the first row is the header.
std::string Table(const Rows& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (r.size() > width.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - DisplayWidth(r[i]) + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string Csv(const Rows& rows) {
  std::string out;
  for (const auto& r : rows) {
    std::vector<std::string> fields;
    for (const auto& f : r) fields.push_back(CsvField(f));
    out += absl::StrJoin(fields, ",") + "\n";
  }
  return out;
}

}  // namespace

namespace {

// Walks `text` a character at a time (a byte that is not UTF-8 takes one column) and stops before
// the first character that would take it past `columns`. Returns {bytes, columns} walked.
std::pair<size_t, size_t> Walk(absl::string_view text, size_t columns) {
  size_t bytes = 0, width = 0;
  while (bytes < text.size()) {
    utf8proc_int32_t c = 0;
    utf8proc_ssize_t n =
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + bytes),
                         static_cast<utf8proc_ssize_t>(text.size() - bytes), &c);
    size_t w = 1;
    if (n <= 0) {
      n = 1;
    } else {
      w = static_cast<size_t>(std::max(0, utf8proc_charwidth(c)));
    }
    if (width + w > columns) break;
    width += w;
    bytes += static_cast<size_t>(n);
  }
  return {bytes, width};
}

}  // namespace

size_t DisplayWidth(absl::string_view text) {
  return Walk(text, std::numeric_limits<size_t>::max()).second;
}

absl::string_view PrefixWithin(absl::string_view text, size_t columns) {
  return text.substr(0, Walk(text, columns).first);
}

std::string CsvField(const std::string& s) {
  // A cell a spreadsheet would run as a formula gets a leading ' (leadctl's readers drop it).
  const bool formula = !s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
                                      s[0] == '\t' || s[0] == '\r');
  const std::string cell = formula ? "'" + s : s;
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string q = "\"";
  for (char c : cell) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string CsvCellValue(absl::string_view cell) {
  if (!cell.empty() && cell[0] == '\'' && cell.size() > 1) {
    const char c = cell[1];
    if (c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r') {
      return std::string(cell.substr(1));
    }
  }
  return std::string(cell);
}

namespace {

std::string Render(const Rows& rows, Format format) {
  return format == Format::kCsv ? Csv(rows) : Table(rows);
}

std::string Date(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%d", common::FromProto(ts), absl::UTCTimeZone());
}

std::string DateTime(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M", common::FromProto(ts), absl::UTCTimeZone());
}

std::string Group(const std::string& split, const std::string& value) {
  if (value.empty()) {
    if (split.empty()) return "(all)";
    return split == "owner" ? "(unassigned)" : "(none)";
  }
  return value;
}

std::string Money(const std::string& currency, int64_t micros) {
  v1::Money m;
  m.set_currency_code(currency);
  m.set_amount_micros(micros);
  return FormatMoney(m);
}

std::string Ratio(double r) { return absl::StrFormat("%.6f", r); }

// Tables show "-" for an empty value; CSV keeps it empty.
std::string OrDash(const std::string& s, Format format) {
  return s.empty() && format == Format::kTable ? "-" : s;
}

}  // namespace

std::string HumanDuration(int64_t ms) {
  if (ms < 1000) return absl::StrFormat("%.3fs", ms / 1000.0);
  const int64_t s = ms / 1000;
  const int64_t days = s / 86400;
  const std::string hms =
      absl::StrFormat("%02d:%02d:%02d", (s % 86400) / 3600, (s % 3600) / 60, s % 60);
  return days > 0 ? absl::StrCat(days, "d ", hms) : hms;
}

std::string Percent(double ratio) { return absl::StrFormat("%.1f%%", ratio * 100); }

std::string RenderCohort(const v1::CohortFunnelReport& r, Format format) {
  const bool owner = r.split() == "owner";
  std::vector<const v1::FunnelGroup*> groups = {&r.total()};
  for (const auto& g : r.groups()) groups.push_back(&g);
  if (format == Format::kCsv) {
    Rows rows;
    std::vector<std::string> header = {"split",
                                       "group",
                                       "captured",
                                       "contacted",
                                       "qualified",
                                       "presented",
                                       "proposal",
                                       "converted",
                                       "conversion_rate",
                                       "contacted_own",
                                       "responded",
                                       "response_rate",
                                       "assigned",
                                       "meetings_demos",
                                       "ever_rejected",
                                       "ever_postponed",
                                       "ever_disqualified",
                                       "reactivated",
                                       "reactivated_converted"};
    for (const auto& t : r.total().timings()) {
      for (const char* f : {"count", "mean_ms", "p50_ms", "p90_ms", "min_ms", "max_ms"}) {
        header.push_back(absl::StrCat(t.name(), ".", f));
      }
    }
    for (const char* f : {"count", "mean", "p50", "p90", "min", "max"}) {
      header.push_back(absl::StrCat("touches_before_conversion.", f));
    }
    header.push_back("costs");
    rows.push_back(header);
    for (const v1::FunnelGroup* g : groups) {
      const bool total = g == &r.total();
      std::vector<std::string> row = {
          r.split(),
          total ? "(all)" : g->split_value(),
          absl::StrCat(g->captured()),
          absl::StrCat(g->contacted()),
          absl::StrCat(g->qualified()),
          absl::StrCat(g->presented()),
          absl::StrCat(g->proposal()),
          absl::StrCat(g->converted()),
          Ratio(owner && !total ? g->owner_conversion_rate() : g->conversion_rate()),
          absl::StrCat(g->contacted_own()),
          absl::StrCat(g->responded()),
          Ratio(g->response_rate()),
          absl::StrCat(g->assigned()),
          absl::StrCat(g->meetings_demos()),
          absl::StrCat(g->ever_rejected()),
          absl::StrCat(g->ever_postponed()),
          absl::StrCat(g->ever_disqualified()),
          absl::StrCat(g->reactivated()),
          absl::StrCat(g->reactivated_converted())};
      for (const v1::Distribution* d : [&] {
             std::vector<const v1::Distribution*> all;
             for (const auto& t : g->timings()) all.push_back(&t);
             all.push_back(&g->touches_before_conversion());
             return all;
           }()) {
        row.push_back(absl::StrCat(d->count()));
        row.push_back(absl::StrFormat("%.3f", d->mean()));
        for (int64_t v : {d->p50(), d->p90(), d->min(), d->max()}) {
          row.push_back(absl::StrCat(v));
        }
      }
      std::vector<std::string> costs;
      for (const auto& c : g->costs()) {
        costs.push_back(absl::StrCat(c.currency_code(), " total=", c.total_micros(),
                                     " per_lead=", c.per_lead_micros(),
                                     " per_customer=", c.per_customer_micros()));
      }
      row.push_back(absl::StrJoin(costs, "; "));
      rows.push_back(row);
    }
    return Csv(rows);
  }

  std::string out = absl::StrCat("Cohort: leads captured ", Date(r.captured_from()), " .. ",
                                 Date(r.captured_to()), " (UTC, end exclusive)");
  if (r.within_days() > 0) {
    absl::StrAppend(&out, "; milestones counted within ", r.within_days(), " day",
                    r.within_days() == 1 ? "" : "s", " of capture");
  }
  if (!r.split().empty()) absl::StrAppend(&out, "; split by ", r.split());
  if (owner) {
    absl::StrAppend(&out,
                    " (each milestone credited to the owner at the time; ASSIGNED = leads "
                    "ever assigned, CONV % = conversions / assigned)");
  }
  out += "\n\n";
  Rows rows;
  rows.push_back({owner ? "OWNER" : "GROUP", owner ? "ASSIGNED" : "CAPTURED", "CONTACTED",
                  "QUALIFIED", "PRESENTED", "PROPOSAL", "CONVERTED", "CONV %", "RESPONSE %",
                  "MTG+DEMO/CONV", "P50 TO CONVERT"});
  for (const v1::FunnelGroup* g : groups) {
    const bool total = g == &r.total();
    auto with_step = [&](int64_t n, int step) {
      if (owner) return absl::StrCat(n);  // credits per owner do not form a funnel
      return absl::StrCat(n, " (", Percent(g->steps(step).rate()), ")");
    };
    rows.push_back(
        {total ? "(all)" : Group(r.split(), g->split_value()),
         absl::StrCat(owner ? g->assigned() : g->captured()), with_step(g->contacted(), 0),
         with_step(g->qualified(), 1), with_step(g->presented(), 2), with_step(g->proposal(), 3),
         with_step(g->converted(), 4),
         Percent(owner ? g->owner_conversion_rate() : g->conversion_rate()),
         absl::StrCat(Percent(g->response_rate()), " of ", g->contacted_own()),
         g->converted() == 0 ? "-" : absl::StrFormat("%.2f", g->meetings_demos_per_conversion()),
         g->timings(5).count() == 0 ? "-" : HumanDuration(g->timings(5).p50())});
  }
  out += Table(rows);
  out += "\nTimings, all leads of the cohort (reached times; nearest-rank percentiles):\n";
  Rows timing = {{"STEP", "COUNT", "MEAN", "P50", "P90", "MIN", "MAX"}};
  for (const auto& t : r.total().timings()) {
    if (t.count() == 0) {
      timing.push_back({t.name(), "0", "-", "-", "-", "-", "-"});
      continue;
    }
    timing.push_back({t.name(), absl::StrCat(t.count()),
                      HumanDuration(static_cast<int64_t>(t.mean())), HumanDuration(t.p50()),
                      HumanDuration(t.p90()), HumanDuration(t.min()), HumanDuration(t.max())});
  }
  const v1::Distribution& touches = r.total().touches_before_conversion();
  timing.push_back({"touches before conversion", absl::StrCat(touches.count()),
                    absl::StrFormat("%.2f", touches.mean()), absl::StrCat(touches.p50()),
                    absl::StrCat(touches.p90()), absl::StrCat(touches.min()),
                    absl::StrCat(touches.max())});
  out += Table(timing);
  const v1::FunnelGroup& t = r.total();
  absl::StrAppend(&out, "\nExits: ", t.ever_rejected(), " rejected, ", t.ever_postponed(),
                  " postponed, ", t.ever_disqualified(), " disqualified; ", t.reactivated(),
                  " reactivated, of which ", t.reactivated_converted(), " converted\n");
  for (const auto& c : t.costs()) {
    absl::StrAppend(
        &out, "Acquisition cost (", c.currency_code(), "): total ",
        Money(c.currency_code(), c.total_micros()), " over ", c.leads_with_cost(),
        " leads; per lead ", Money(c.currency_code(), c.per_lead_micros()), "; per customer ",
        t.converted() == 0 ? "-" : Money(c.currency_code(), c.per_customer_micros()), "\n");
  }
  return out;
}

std::string RenderActivity(const v1::ActivityReport& r, Format format) {
  Rows rows = {{"BUCKET", "GROUP", "CAPTURED", "CONTACTED", "QUALIFIED", "PRESENTED", "PROPOSAL",
                "CONVERTED", "REJECTED", "POSTPONED", "DISQUALIFIED", "REACTIVATED"}};
  if (format == Format::kCsv) {
    for (auto& h : rows[0]) h = absl::AsciiStrToLower(h);
    rows[0][0] = "bucket_start";
  }
  auto add = [&](const std::string& bucket, const std::string& group, const v1::ActivityCounts& c) {
    rows.push_back({bucket, group, absl::StrCat(c.captured()), absl::StrCat(c.contacted()),
                    absl::StrCat(c.qualified()), absl::StrCat(c.presented()),
                    absl::StrCat(c.proposal()), absl::StrCat(c.converted()),
                    absl::StrCat(c.rejected()), absl::StrCat(c.postponed()),
                    absl::StrCat(c.disqualified()), absl::StrCat(c.reactivated())});
  };
  for (const auto& b : r.buckets()) {
    add(Date(b.start()), "(all)", b.total());
    for (const auto& g : b.groups()) {
      add(Date(b.start()), g.split_value().empty() ? "(none)" : g.split_value(), g);
    }
  }
  add("total", "(all)", r.total());
  return Render(rows, format);
}

std::string RenderPipeline(const v1::PipelineReport& r, Format format) {
  Rows rows = {{"GROUP", "STAGE", "PROBABILITY", "LEADS", "BUDGET", "WEIGHTED"}};
  if (format == Format::kCsv) {
    rows[0] = {"group",    "stage",         "probability_percent", "leads",
               "currency", "budget_micros", "weighted_micros"};
  }
  std::vector<const v1::PipelineGroup*> groups = {&r.total()};
  for (const auto& g : r.groups()) groups.push_back(&g);
  for (const v1::PipelineGroup* g : groups) {
    const std::string name = g == &r.total()            ? "(all)"
                             : g->split_value().empty() ? "(none)"
                                                        : g->split_value();
    for (const auto& s : g->stages()) {
      const std::string stage = common::EnumShortName(v1::SalesStage_descriptor(), s.stage());
      if (format == Format::kCsv) {
        if (s.money().empty()) {
          rows.push_back({name, stage, absl::StrCat(s.probability_percent()),
                          absl::StrCat(s.leads()), "", "0", "0"});
        }
        for (const auto& m : s.money()) {
          rows.push_back({name, stage, absl::StrCat(s.probability_percent()),
                          absl::StrCat(s.leads()), m.currency_code(),
                          absl::StrCat(m.budget_micros()), absl::StrCat(m.weighted_micros())});
        }
        continue;
      }
      std::vector<std::string> budget, weighted;
      for (const auto& m : s.money()) {
        budget.push_back(Money(m.currency_code(), m.budget_micros()));
        weighted.push_back(Money(m.currency_code(), m.weighted_micros()));
      }
      rows.push_back({name, stage, absl::StrCat(s.probability_percent(), "%"),
                      absl::StrCat(s.leads()), budget.empty() ? "-" : absl::StrJoin(budget, " + "),
                      weighted.empty() ? "-" : absl::StrJoin(weighted, " + ")});
    }
    if (format == Format::kTable) {
      std::vector<std::string> budget, weighted;
      for (const auto& m : g->money()) {
        budget.push_back(Money(m.currency_code(), m.budget_micros()));
        weighted.push_back(Money(m.currency_code(), m.weighted_micros()));
      }
      rows.push_back({name, "TOTAL", "", absl::StrCat(g->leads()),
                      budget.empty() ? "-" : absl::StrJoin(budget, " + "),
                      weighted.empty() ? "-" : absl::StrJoin(weighted, " + ")});
    }
  }
  if (format == Format::kCsv) return Csv(rows);
  return "Open pipeline: leads QUALIFIED now, by stage (weighted = budget x stage "
         "probability)\n\n" +
         Table(rows);
}

std::string RenderExits(const google::protobuf::RepeatedPtrField<v1::ExitRecord>& exits,
                        const std::string& next_page_token, const std::string& title,
                        Format format) {
  Rows rows = {{"EXITED (UTC)", "KIND", "LEAD", "NAME", "COMPANY", "OWNER", "REASON", "TEXT",
                "REVISIT", "REACTIVATED", "CONVERTED AFTER"}};
  if (format == Format::kCsv) {
    rows[0] = {"exited_at", "kind", "lead_id",    "name",           "company",        "owner",
               "reason",    "text", "revisit_at", "reactivated_at", "converted_after"};
  }
  for (const auto& x : exits) {
    auto time = [&](const google::protobuf::Timestamp& ts) {
      if (!(ts.seconds() || ts.nanos())) return std::string(format == Format::kCsv ? "" : "-");
      return format == Format::kCsv ? common::Rfc3339(common::FromProto(ts)) : DateTime(ts);
    };
    rows.push_back({time(x.exited_at()), common::EnumShortName(v1::ExitKind_descriptor(), x.kind()),
                    x.lead_id(), OrDash(x.lead_name(), format), OrDash(x.company(), format),
                    OrDash(x.owner(), format), OrDash(x.reason(), format), OrDash(x.text(), format),
                    time(x.revisit_at()), time(x.reactivated_at()),
                    x.converted_after() ? "yes" : (format == Format::kCsv ? "no" : "-")});
  }
  if (format == Format::kCsv) return Csv(rows);
  std::string out = title + "\n\n" + Table(rows);
  absl::StrAppend(&out, "(", exits.size(), " lead", exits.size() == 1 ? "" : "s");
  if (!next_page_token.empty()) absl::StrAppend(&out, "; more: --page-token ", next_page_token);
  return out + ")\n";
}

std::string RenderExitSummary(const v1::ExitSummary& s, Format format) {
  Rows rows = {{"KIND", "REASON", "EXITS", "REACTIVATED", "RATE", "CONVERTED AFTER"}};
  if (format == Format::kCsv) {
    rows[0] = {"kind", "reason", "exits", "reactivated", "reactivation_rate", "converted_after"};
  }
  auto add = [&](const v1::ExitReasonCount& c, const std::string& kind, const std::string& reason) {
    rows.push_back(
        {kind, reason, absl::StrCat(c.exits()), absl::StrCat(c.reactivated()),
         format == Format::kCsv ? Ratio(c.reactivation_rate()) : Percent(c.reactivation_rate()),
         absl::StrCat(c.converted_after())});
  };
  for (const auto& c : s.by_reason()) {
    add(c, common::EnumShortName(v1::ExitKind_descriptor(), c.kind()),
        c.reason().empty() ? "(none)" : c.reason());
  }
  for (const auto& c : s.by_kind()) {
    add(c, common::EnumShortName(v1::ExitKind_descriptor(), c.kind()), "(all reasons)");
  }
  add(s.total(), "all", "(all reasons)");
  if (format == Format::kCsv) return Csv(rows);
  return Table(rows) +
         absl::StrCat("\nSecond-chance conversions (converted after a reactivation): ",
                      s.total().converted_after(), "\n");
}

}  // namespace leadflow::leadctl
