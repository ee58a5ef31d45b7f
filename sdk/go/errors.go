package boost

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrClosed is returned by every call made after Close: the background
	// goroutine is gone, so an event accepted now could never be sent.
	ErrClosed = errors.New("boost: client is closed")

	// ErrQueueFull means the event was dropped because MaxQueueSize events
	// were already waiting, typically because the server has been
	// unreachable for a while. Dropping new events keeps memory bounded;
	// Track returns it wrapped in a *DeliveryError that carries the
	// event's messageId, so test it with errors.Is.
	ErrQueueFull = errors.New("boost: queue is full; event dropped")

	// ErrPublishableKey is returned by New for a pk_live_ key. Publishable
	// keys are meant to be shipped to browsers and may not send trusted
	// events such as purchases, which is most of what a server sends.
	ErrPublishableKey = errors.New("boost: server SDK needs a secret key (sk_live_…); publishable keys are for browsers")

	// ErrMalformedKey is returned by New for anything that is not
	// "sk_live_" followed by 64 lowercase hex characters, so a truncated or
	// mistyped key fails at start-up instead of as a 401 on every batch.
	ErrMalformedKey = errors.New("boost: malformed API key: want sk_live_ followed by 64 lowercase hex characters")
)

// ValidationError is returned synchronously by Track, Identify, Purchase,
// CheckoutComplete and ReferralSuccess when the event would certainly be
// refused by the server. The event is not queued.
type ValidationError struct {
	Field   string // the offending field, in wire terms, e.g. "properties.amount"
	Message string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("boost: invalid event: %s %s", e.Field, e.Message)
}

// RejectedError reports one event that the server refused on its own (a
// per-item rejection) while accepting the rest of its batch. Only that
// event is dropped; resending it would be refused again.
type RejectedError struct {
	MessageID string
	Event     string // the event name, to make logs readable
	Code      string // e.g. "invalid_request"
	Field     string // e.g. "properties.amount"; may be empty
	Message   string
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "boost: event %q (messageId %s) rejected: %s", e.Event, e.MessageID, e.Code)
	if e.Field != "" {
		fmt.Fprintf(&b, " on %s", e.Field)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// APIError is an answer of the server that concerns a whole request: a
// status other than 2xx, with the error body the server sent. It is
// usually found wrapped in a *DeliveryError, which says which events it
// cost; use errors.As to reach it.
type APIError struct {
	Status  int
	Code    string // from the body's error.code, or derived from Status
	Message string
	Field   string // from the body's error.field, when given
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("boost: server answered %d %s", e.Status, e.Code)
	if e.Field != "" {
		msg += " on " + e.Field
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// DeliveryError reports events that were dropped without a per-item
// verdict: the server refused the whole request (Err is an *APIError, e.g.
// a 401), retries ran out (Err is the last *APIError or network error),
// Close's context expired (Err wraps the context's error), or the queue was
// full (Err is ErrQueueFull).
type DeliveryError struct {
	MessageIDs []string
	Attempts   int // requests made for these events; 0 if none was
	Err        error
}

func (e *DeliveryError) Error() string {
	n := len(e.MessageIDs)
	what := fmt.Sprintf("%d events", n)
	if n == 1 {
		what = "event " + e.MessageIDs[0]
	}
	if e.Attempts == 0 {
		return fmt.Sprintf("boost: %s dropped: %v", what, e.Err)
	}
	return fmt.Sprintf("boost: %s dropped after %d attempt(s): %v", what, e.Attempts, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// FlushError is what Flush and Close return when some events failed
// permanently while they were waiting. Each failure was also passed to
// OnError. Errors keeps the first few failures (see Failed for the count of
// events); errors.As and errors.Is look into them.
type FlushError struct {
	Failed int     // events that failed permanently
	Errors []error // *RejectedError or *DeliveryError, at most maxFlushErrors
}

// maxFlushErrors bounds what a FlushError keeps, so a long outage cannot
// grow it without limit; OnError still sees every failure.
const maxFlushErrors = 100

func (e *FlushError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("boost: %d event(s) failed", e.Failed)
	}
	msg := fmt.Sprintf("boost: %d event(s) failed; first: %v", e.Failed, e.Errors[0])
	if more := len(e.Errors) - 1; more > 0 {
		msg += fmt.Sprintf(" (and %d more error(s))", more)
	}
	return msg
}

func (e *FlushError) Unwrap() []error { return e.Errors }

// MessageIDs lists the messageIds of the events that err says were lost,
// looking through wrapped and joined errors. It lets a caller that keeps
// its own record of events (an outbox, say) mark exactly those as failed.
func MessageIDs(err error) []string {
	var ids []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *RejectedError:
			ids = append(ids, e.MessageID)
			return
		case *DeliveryError:
			ids = append(ids, e.MessageIDs...)
			return
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return ids
}
