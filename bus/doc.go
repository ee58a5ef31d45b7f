// Package bus is Boost's transport: NATS JetStream (embedded or remote) for
// commands and the append-only event store, Watermill publishers and
// subscribers over it, Kafka (embedded kfake or a real cluster) as the
// durable log, and the bridge that moves domain events from one to the other.
package bus
