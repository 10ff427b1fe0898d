// Offline checks of deploy/k8s: each manifest against the Kubernetes OpenAPI schema
// (kubernetes-models, generated from the upstream specs), then the things a schema cannot see:
// Services select pods that exist and name ports the pods declare, probes point at declared
// ports, ConfigMaps referenced exist, and each leadflow container's configuration (ConfigMap +
// env) is accepted by `leadflow config check`.
//   node tools/deploy-check/check.js LEADFLOW_BINARY deploy/k8s/*.yaml
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");
const { spawnSync } = require("child_process");

const [leadflow, ...files] = process.argv.slice(2);
if (!leadflow || files.length === 0) {
  console.error("usage: check.js LEADFLOW_BINARY MANIFEST.yaml...");
  process.exit(2);
}
const kinds = {
  "v1/Namespace": "kubernetes-models/v1/Namespace",
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Service": "kubernetes-models/v1/Service",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "apps/v1/StatefulSet": "kubernetes-models/apps/v1/StatefulSet",
  "batch/v1/Job": "kubernetes-models/batch/v1/Job",
};
let failures = 0;
const fail = (where, what) => {
  failures++;
  console.error(`FAIL ${where}: ${what}`);
};
const docs = [];
for (const file of files) {
  for (const doc of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
    if (!doc) continue;
    const where = `${path.basename(file)} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    const module = kinds[`${doc.apiVersion}/${doc.kind}`];
    if (!module) {
      fail(where, `no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    const Model = Object.values(require(module))[0];
    try {
      new Model(doc).validate();
    } catch (e) {
      fail(where, `schema: ${e.message}`);
    }
    docs.push({ where, doc });
  }
}
const workloads = docs.filter((d) => ["Deployment", "StatefulSet", "Job"].includes(d.doc.kind));
const configMaps = new Map(
  docs.filter((d) => d.doc.kind === "ConfigMap").map((d) => [d.doc.metadata.name, d.doc.data || {}]));
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);

for (const { where, doc } of docs.filter((d) => d.doc.kind === "Service")) {
  const pods = workloads.filter((w) => matches(doc.spec.selector, (w.doc.spec.template.metadata || {}).labels));
  if (pods.length === 0) fail(where, "selects no pod template");
  for (const port of doc.spec.ports) {
    if (typeof port.targetPort !== "string") continue;
    for (const w of pods) {
      const named = w.doc.spec.template.spec.containers.flatMap((c) => (c.ports || []).map((p) => p.name));
      if (!named.includes(port.targetPort)) fail(where, `targetPort ${port.targetPort} not declared by ${w.where}`);
    }
  }
}
let checkedConfigs = 0;
for (const { where, doc } of workloads) {
  if (doc.spec.selector && !matches(doc.spec.selector.matchLabels, (doc.spec.template.metadata || {}).labels)) {
    fail(where, "selector does not match the pod template's labels");
  }
  for (const c of doc.spec.template.spec.containers) {
    const ports = (c.ports || []).flatMap((p) => [p.name, p.containerPort]);
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
      if (!probe) continue;
      const port = (probe.grpc || probe.tcpSocket || probe.httpGet || {}).port;
      if (port !== undefined && !ports.includes(port)) fail(where, `probe port ${port} not declared`);
    }
    if (c.image !== "leadflow:dev") continue;
    // The environment leadflow will see: ConfigMaps first, then env (which wins).
    const env = { PATH: process.env.PATH };
    for (const from of c.envFrom || []) {
      const name = from.configMapRef && from.configMapRef.name;
      if (!configMaps.has(name)) fail(where, `configMapRef ${name} does not exist`);
      Object.assign(env, configMaps.get(name) || {});
    }
    for (const e of c.env || []) env[e.name] = e.value;
    const args = [...(c.args || [])];
    if (args[0] !== "serve") {
      fail(where, `expected args to start with serve, got ${JSON.stringify(args)}`);
      continue;
    }
    args[0] = "check";
    const r = spawnSync(leadflow, ["config", ...args], { env, encoding: "utf8" });
    if (r.status !== 0) {
      fail(where, `leadflow config check refused it: ${(r.stderr || "").trim()}`);
    } else {
      checkedConfigs++;
      console.log(`ok ${where}: ${r.stdout.trim()}`);
    }
  }
}
console.log(`${docs.length} manifests, ${checkedConfigs} leadflow configurations checked, ${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
