// The view registry: the one table of the views leadflow serves. Each entry says everything the
// rest of the server needs (its name, its role, its store, its projection, its query service and
// the gRPC health name it reports under), and every part that deals with views reads it: the
// node's wiring and health, the roles and gateway routes of the configuration, rebuild, backup
// and verify, `leadflow rebuild --view`, and `leadctl views` / `leadctl status` (through the
// ViewAdminService). A new view is one entry here (RegisterView for one added by a test).
#ifndef LEADFLOW_SERVICES_SERVER_VIEWS_H_
#define LEADFLOW_SERVICES_SERVER_VIEWS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/impl/service_type.h>

#include "projections/runner/runner.h"
#include "projections/runner/view_store.h"
#include "services/config/node_options.h"
#include "services/privacy/vault.h"

namespace leadflow::server {

struct ViewEdge;  // services.h
class AuthGuard;  // auth_guard.h

// What a view's query service is built from, in a running node.
struct ViewServing {
  const config::NodeOptions* options = nullptr;
  projections::Projection* projection = nullptr;  // the view's own (made by `projection`)
  const projections::ViewStore* store = nullptr;
  const ViewEdge* edge = nullptr;
  int32_t partitions = 0;
  privacy::Vault* vault = nullptr;         // null: no encryption
  std::shared_ptr<const AuthGuard> guard;  // every call's admission; null: no authentication
};

struct ViewSpec {
  // The view's name: its store is <data-dir>/views/<name>, its role <name>-view, `leadflow
  // rebuild --view <name>`, the `view` label of its metrics.
  std::string name;
  // Its query service (full gRPC name), which is also the name its gRPC health is reported
  // under and the service a gateway forwards to the <name>-view process.
  std::string service;
  // Makes the view's projection (options: the node's).
  std::function<std::unique_ptr<projections::Projection>(const config::NodeOptions&)> projection;
  // Makes the view's query service, guarded by `guard`; the node registers it.
  std::function<std::unique_ptr<grpc::Service>(const ViewServing&)> serve;
  std::string role() const { return config::ViewRole(name); }
};

// Every view, in the order the node opens, reports and rebuilds them.
const std::vector<ViewSpec>& Views();
// Their names, in that order.
std::vector<std::string> ViewNames();
// The view called `name`; nullptr if none.
const ViewSpec* FindView(const std::string& name);
// The view whose query service is `service`; nullptr if none.
const ViewSpec* FindViewByService(const std::string& service);
// Adds a view to the registry (before any node starts; tests and extensions). INVALID_ARGUMENT
// if its name or service is empty or taken.
absl::Status RegisterView(ViewSpec spec);

}  // namespace leadflow::server

#endif  // LEADFLOW_SERVICES_SERVER_VIEWS_H_
