package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/gamify/boost/domain"
)

// Kind is what went wrong with a use case, in terms any port can answer:
// the HTTP port maps each kind to a status, the dashboard to a message.
type Kind string

// Kinds of error.
const (
	Invalid      Kind = "invalid"      // the input is wrong: Field says which part
	Unauthorized Kind = "unauthorized" // no credential, or one that is not (or no longer) valid
	Forbidden    Kind = "forbidden"    // a valid credential that may not do this
	NotFound     Kind = "not_found"
	Conflict     Kind = "conflict"     // the state does not allow it (already done, still failing)
	RateLimited  Kind = "rate_limited" // too much, too fast: RetryAfter says when again
	Unavailable  Kind = "unavailable"  // a dependency is down: retry later, nothing was lost
)

// Error is a use case's failure.
type Error struct {
	Kind Kind
	// Code is a finer, stable name a port may show (forbidden_event,
	// still_failing); empty means the kind's own.
	Code    string
	Field   string
	Message string
	// RetryAfter is when trying again makes sense (rate limits, outages).
	RetryAfter time.Duration
	// Err is the cause, for logs; ports never show it.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns err's kind; an error that is not an *Error is a fault of
// a dependency as far as a caller can tell.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Unavailable
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// invalidInput shows a domain validation error as the caller's mistake.
func invalidInput(err error) *Error {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		return &Error{Kind: Invalid, Field: fe.Field, Message: fe.Error()}
	}
	return &Error{Kind: Invalid, Message: err.Error()}
}

func notFound(what, id string) *Error {
	return &Error{Kind: NotFound, Message: fmt.Sprintf("%s %s not found", what, id)}
}

func unavailable(what string, err error) *Error {
	return &Error{Kind: Unavailable, Message: what + " is unavailable; retry shortly", RetryAfter: 2 * time.Second, Err: err}
}
