// Error construction helpers shared by every module, so messages have one shape:
//   INVALID_ARGUMENT   "<command>.<field path>: <what is wrong>"
//   FAILED_PRECONDITION "<command>: <which rule, and the state that refuses it>"
#ifndef LEADFLOW_SERVICES_COMMON_STATUS_UTIL_H_
#define LEADFLOW_SERVICES_COMMON_STATUS_UTIL_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace leadflow::common {

inline absl::Status FieldError(absl::string_view scope, absl::string_view field,
                               absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(scope, ".", field, ": ", what));
}

// Evaluates `expr` (an absl::Status or StatusOr) and returns it from the caller if not OK.
#define LEADFLOW_RETURN_IF_ERROR(expr)                \
  do {                                                \
    if (absl::Status _lf_st = (expr); !_lf_st.ok()) { \
      return _lf_st;                                  \
    }                                                 \
  } while (0)

#define LEADFLOW_CONCAT_INNER(a, b) a##b
#define LEADFLOW_CONCAT(a, b) LEADFLOW_CONCAT_INNER(a, b)
// `tmp` and `lhs` name a variable or declare one: they cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define LEADFLOW_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                   \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(*tmp)
// NOLINTEND(bugprone-macro-parentheses)
// LEADFLOW_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define LEADFLOW_ASSIGN_OR_RETURN(lhs, rexpr) \
  LEADFLOW_ASSIGN_OR_RETURN_IMPL(LEADFLOW_CONCAT(_lf_sor_, __LINE__), lhs, rexpr)

}  // namespace leadflow::common

#endif  // LEADFLOW_SERVICES_COMMON_STATUS_UTIL_H_
