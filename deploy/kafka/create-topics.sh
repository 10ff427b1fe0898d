#!/usr/bin/env bash
# Creates leadflow's events topic and keys topic on a real Kafka cluster (run from a machine with Kafka's CLI).
#   deploy/kafka/create-topics.sh BOOTSTRAP [PARTITIONS=8] [REPLICATION=3]
# The partition count is fixed for the life of the deployment (leadflow refuses to start against
# another count); retention is infinite: the log is the system of record.
set -euo pipefail
BOOTSTRAP=${1:?usage: create-topics.sh BOOTSTRAP [PARTITIONS] [REPLICATION]}
PARTITIONS=${2:-8}
REPLICATION=${3:-3}
MIN_ISR=$(( REPLICATION > 1 ? 2 : 1 ))
kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
  --topic leadflow.events.v1 \
  --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
  --config retention.ms=-1 --config retention.bytes=-1 \
  --config cleanup.policy=delete --config min.insync.replicas="$MIN_ISR"
# The data keys of crypto-shredding (docs/security.md): compacted, so an erasure's tombstone
# removes a lead's key for good once delete.retention.ms (1 day) has passed.
kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
  --topic leadflow.keys.v1 \
  --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
  --config cleanup.policy=compact --config delete.retention.ms=86400000 \
  --config min.compaction.lag.ms=0 --config segment.ms=3600000 \
  --config min.insync.replicas="$MIN_ISR"
kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --describe --topic leadflow.events.v1
kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --describe --topic leadflow.keys.v1
