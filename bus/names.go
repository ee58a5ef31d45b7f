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

// BridgeConsumer is the durable JetStream consumer the bridge reads with.
func (n Names) BridgeConsumer() string { return n.upper() + "_BRIDGE" }

// WorkerQueue is the deliver group command handlers share.
func (n Names) WorkerQueue() string { return n.upper() + "_WORKERS" }
