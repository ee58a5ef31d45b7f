// Package chaos is Boost's crash-safety instrument, run by `boost chaos`.
//
// It starts Boost as real OS processes of the boost binary — the api,
// worker, bridge and projector roles over a NATS server and a kfake broker
// it starts itself, PostgreSQL and Redis, or `boost dev` alone — puts an
// SDK-style load on them, SIGKILLs one component at seeded random moments
// and restarts it, lets the pipeline drain, and then checks exactly what
// the read model and the Kafka log hold against what the API accepted:
// nothing lost, nothing duplicated, nothing stuck, roll-ups equal to the
// events they summarise. A last scenario measures how long two API
// processes keep accepting a revoked key. See docs/chaos.md.
package chaos
