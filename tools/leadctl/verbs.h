// leadctl's subcommands, in three groups. Each Add* function adds its group's subcommands and
// flags to `app` and a Verb (what runs when the subcommand is chosen) per subcommand to `verbs`;
// the returned object holds the flags' values and must outlive the parse and the run.
#ifndef LEADFLOW_TOOLS_LEADCTL_VERBS_H_
#define LEADFLOW_TOOLS_LEADCTL_VERBS_H_

#include <memory>
#include <vector>

#include "tools/leadctl/client.h"

namespace leadflow::leadctl {

class VerbFlags {
 public:
  virtual ~VerbFlags() = default;
};

// capture, inquiry, update-contact, assign, ..., convert, customer commands, erase, batch.
std::unique_ptr<VerbFlags> AddCommandVerbs(CLI::App& app, const Global& g,
                                           std::vector<Verb>& verbs);
// get, timeline, find, list, overdue, customer, customers, events, health, views.
std::unique_ptr<VerbFlags> AddQueryVerbs(CLI::App& app, std::vector<Verb>& verbs);
// funnel cohort|activity, pipeline, queue, winback, exits, exit-reasons (table, --csv, --json).
std::unique_ptr<VerbFlags> AddAnalyticsVerbs(CLI::App& app, std::vector<Verb>& verbs);

}  // namespace leadflow::leadctl

#endif  // LEADFLOW_TOOLS_LEADCTL_VERBS_H_
