// Fuzz target: leadctl's value parsing (money, times, enum names) and the CSV/table renderers on
// the values it parses. The first byte picks the parser; the rest is the text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tools/leadctl/parse.h"
#include "tools/leadctl/report.h"

using namespace leadflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto money = leadctl::ParseMoney("--amount", text);
      if (money.ok()) (void)leadctl::FormatMoney(*money);
      break;
    }
    case 1:
      (void)leadctl::ParseTime("--at", text);
      break;
    case 2:
      (void)leadctl::ParseEnum("--source", v1::SourceChannel_descriptor(), text);
      (void)leadctl::ParseEnum("--reason", v1::RejectionReason_descriptor(), text);
      break;
    case 3: {
      // Exit lists with arbitrary text in every cell, as CSV and as a table.
      google::protobuf::RepeatedPtrField<v1::ExitRecord> exits;
      v1::ExitRecord* x = exits.Add();
      x->set_lead_name(text);
      x->set_reason(text);
      x->set_text(text);
      (void)leadctl::RenderExits(exits, text, text, leadctl::Format::kCsv);
      (void)leadctl::RenderExits(exits, text, text, leadctl::Format::kTable);
      break;
    }
    default: {
      uint64_t bits = 0;
      for (size_t i = 0; i < std::min<size_t>(8, text.size()); ++i) {
        bits = (bits << 8) | static_cast<uint8_t>(text[i]);
      }
      (void)leadctl::HumanDuration(static_cast<int64_t>(bits >> 1));  // any non-negative value
      break;
    }
  }
  return 0;
}
