// For fuzz targets that parse Protobuf: inputs that are not valid UTF-8 in string fields are
// refused by the parser, which also logs them; the log would drown the fuzzer's own output.
// Include in exactly one file per fuzz target (it defines LLVMFuzzerInitialize).
#ifndef LEADFLOW_TESTS_FUZZ_QUIET_PROTOBUF_H_
#define LEADFLOW_TESTS_FUZZ_QUIET_PROTOBUF_H_

#include <string>

#include "google/protobuf/stubs/logging.h"

namespace leadflow::fuzz {
inline void Quiet(google::protobuf::LogLevel, const char*, int, const std::string&) {}
}  // namespace leadflow::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(&leadflow::fuzz::Quiet);
  return 0;
}

#endif  // LEADFLOW_TESTS_FUZZ_QUIET_PROTOBUF_H_
