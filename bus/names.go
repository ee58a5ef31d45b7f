package bus

import "strings"

// Names derives every stream, subject and consumer name from one prefix, so
// tests and side-by-side deployments can share a NATS server without
// colliding.
type Names struct {
	Prefix string
}

func (n Names) upper() string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(n.Prefix))
}

// CommandStream holds commands until a handler acks them.
func (n Names) CommandStream() string { return n.upper() + "_COMMANDS" }

// EventStream is the append-only store of domain events, one subject per
// aggregate.
func (n Names) EventStream() string { return n.upper() + "_EVENTS" }

// CommandSubject is the subject (and Watermill topic) of one command type.
func (n Names) CommandSubject(command string) string { return n.Prefix + ".commands." + command }

// AggregateSubject is where one aggregate's events are appended.
func (n Names) AggregateSubject(aggregateType, id string) string {
	return n.Prefix + ".events." + aggregateType + "." + id
}

// TrackedStream holds tracked events and their outcomes until the bridge
// and the event processor have read them; Kafka is their long-term log.
func (n Names) TrackedStream() string { return n.upper() + "_TRACKED" }

// QuarantineStream keeps the messages write-side stages could not handle
// and moved past, until they are reprocessed.
func (n Names) QuarantineStream() string { return n.upper() + "_QUARANTINE" }

// QuarantineSubject is where a stage's quarantined messages go.
func (n Names) QuarantineSubject(stage string) string {
	return n.Prefix + ".quarantine." + sanitizeName(stage)
}

// QuarantineResolvedSubject marks a quarantined message reprocessed.
func (n Names) QuarantineResolvedSubject(id string) string {
	return n.Prefix + ".quarantine.resolved." + id
}

// TrackedSubject is where a project's EventTracked events are appended
// for the processor to settle (see SettledSubject for the others).
func (n Names) TrackedSubject(projectID string) string { return n.Prefix + ".tracked." + projectID }

// SettledSubject is where a project's tracked events go that need no
// processing: identifies, rejections, and EventTracked settled as it was
// appended (processing.Processor.Settle). It is under the tracked subject,
// so the stream and the bridge take it, but out of the processor's filter
// (TrackedSubjects).
func (n Names) SettledSubject(projectID string) string {
	return n.TrackedSubject(projectID) + ".settled"
}

// TrackedSubjects matches every project's tracked subject.
func (n Names) TrackedSubjects() string { return n.Prefix + ".tracked.*" }

// OutcomeSubject is where EventProcessed and EventFailed are appended.
func (n Names) OutcomeSubject(projectID string) string { return n.Prefix + ".outcomes." + projectID }

// UsageSubject is where coalesced ApiKeyUsed events are appended.
func (n Names) UsageSubject(projectID string) string { return n.Prefix + ".usage." + projectID }

// BridgeConsumer is the durable JetStream consumer the bridge reads a
// stream with.
func (n Names) BridgeConsumer(stream string) string { return stream + "_BRIDGE" }

// ProcessorQueue is the deliver group of the event processor.
func (n Names) ProcessorQueue() string { return n.upper() + "_PROCESSOR" }

// WorkerQueue is the deliver group command handlers share.
func (n Names) WorkerQueue() string { return n.upper() + "_WORKERS" }

// BridgeLeases is the KV bucket of the bridge's per-stream leases.
func (n Names) BridgeLeases() string { return n.upper() + "_BRIDGE_LEASES" }

// BridgePositions is the KV bucket of the last sequence of each stream
// Kafka has.
func (n Names) BridgePositions() string { return n.upper() + "_BRIDGE_POSITIONS" }
