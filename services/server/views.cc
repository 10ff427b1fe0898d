#include "services/server/views.h"

#include "absl/strings/str_cat.h"
#include "projections/customer/customer_view.h"
#include "projections/funnel/funnel_view.h"
#include "projections/lead/lead_view.h"
#include "projections/reprocessing/reprocessing_view.h"
#include "services/server/services.h"

namespace leadflow::server {
namespace {

// The projection of a view with no options.
template <typename P>
std::unique_ptr<projections::Projection> Plain(const config::NodeOptions& /*options*/) {
  return std::make_unique<P>();
}

template <typename Service>
std::unique_ptr<grpc::Service> Guarded(std::unique_ptr<Service> service, const ViewServing& v) {
  service->set_guard(v.guard);
  return service;
}

std::vector<ViewSpec>* Registry() {
  static auto* views = new std::vector<ViewSpec>{
      {.name = "lead",
       .service = "leadflow.v1.LeadQueryService",
       .projection = Plain<projections::LeadProjection>,
       .serve =
           [](const ViewServing& v) {
             return Guarded(std::make_unique<LeadQueryServiceImpl>(
                                v.store, *v.edge, v.partitions, v.options->phone_region, v.vault),
                            v);
           }},
      {.name = "customer",
       .service = "leadflow.v1.CustomerQueryService",
       .projection = Plain<projections::CustomerProjection>,
       .serve =
           [](const ViewServing& v) {
             return Guarded(
                 std::make_unique<CustomerQueryServiceImpl>(v.store, *v.edge, v.partitions), v);
           }},
      {.name = "funnel",
       .service = "leadflow.v1.FunnelQueryService",
       .projection =
           [](const config::NodeOptions& o) {
             return std::make_unique<projections::FunnelProjection>(o.funnel);
           },
       .serve =
           [](const ViewServing& v) {
             return Guarded(
                 std::make_unique<FunnelQueryServiceImpl>(
                     static_cast<const projections::FunnelProjection*>(v.projection), *v.edge),
                 v);
           }},
      {.name = "reprocessing",
       .service = "leadflow.v1.ReprocessingQueryService",
       .projection = Plain<projections::ReprocessingProjection>,
       .serve =
           [](const ViewServing& v) {
             return Guarded(std::make_unique<ReprocessingQueryServiceImpl>(v.store, *v.edge), v);
           }},
  };
  return views;
}

}  // namespace

const std::vector<ViewSpec>& Views() { return *Registry(); }

std::vector<std::string> ViewNames() {
  std::vector<std::string> names;
  for (const ViewSpec& view : Views()) names.push_back(view.name);
  return names;
}

const ViewSpec* FindView(const std::string& name) {
  for (const ViewSpec& view : Views()) {
    if (view.name == name) return &view;
  }
  return nullptr;
}

const ViewSpec* FindViewByService(const std::string& service) {
  for (const ViewSpec& view : Views()) {
    if (view.service == service) return &view;
  }
  return nullptr;
}

absl::Status RegisterView(ViewSpec spec) {
  if (spec.name.empty() || spec.service.empty() || !spec.projection || !spec.serve) {
    return absl::InvalidArgumentError(
        "RegisterView: name, service, projection and serve are required");
  }
  if (FindView(spec.name) != nullptr || FindViewByService(spec.service) != nullptr ||
      spec.service == kCommandService) {
    return absl::InvalidArgumentError(absl::StrCat("RegisterView: a view named ", spec.name,
                                                   " or serving ", spec.service, " exists"));
  }
  Registry()->push_back(std::move(spec));
  return absl::OkStatus();
}

}  // namespace leadflow::server
