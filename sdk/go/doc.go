// Package boost is the Go server SDK for Boost, an event-ingestion platform.
//
// A [Client] queues events in memory and sends them to the Boost API in
// batches from one background goroutine, so that Track and friends never
// block a request handler on the network, and so that at most one batch is
// ever in flight: the order of delivery follows the order of tracking, and
// no event is sent twice by two racing flushes.
//
// Every event gets a UUIDv7 messageId and a timestamp when it is created,
// before it is queued. The server derives the stored event's id from the
// project and the messageId, so the SDK can resend a batch after a timeout,
// a 5xx or a 429 without creating duplicates: retries are safe precisely
// because the messageId never changes.
//
// Whatever the server would refuse for sure (no event name, no user, a
// purchase without an order id, amount or currency, oversized properties)
// is refused locally, by the call that created the event, so mistakes show
// up where they are made rather than later in an error callback. Failures
// that can only be known later (a per-item rejection, a revoked key, a
// server that stays down) are reported through [Config.OnError], and are
// also returned by any [Client.Flush] or [Client.Close] waiting at the time,
// with the messageIds of the events concerned.
//
// The SDK needs a secret key (sk_live_…): it sends trusted events such as
// purchases, which the server accepts only from servers. Publishable keys
// (pk_live_…) are for browsers, and [New] refuses them.
package boost
