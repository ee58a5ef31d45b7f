package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/ratelimit"
)

// Authenticate resolves an API key's plaintext (as sent; "" when none was).
type Authenticate struct{ Plaintext string }

// Ingest accepts tracked events sent with one key, whatever the dialect
// they were sent in: every port decodes its wire format into Incoming
// events and hands them here, to the one validation and the one command
// path.
type Ingest struct {
	Key    *apikeys.Key
	Events []Incoming
}

// Incoming is one event as a port decoded it. Problem is set when the port
// could not decode it (the field and why); Event otherwise. The event's
// name is stored as it came (an identify call sets domain.IdentifyEvent).
type Incoming struct {
	Event   domain.TrackedData
	Problem *Error
	// RetryKey, for an event without a messageId, is what a client's
	// resending of it is recognised by (a port derives it from what the
	// dialect's clients resend unchanged); "" for none.
	RetryKey string
}

// Ingested says what became of each event, in order.
type Ingested struct {
	Results []Result
	// Limit is the rate limit's state after the request (nil: no limit).
	Limit *ratelimit.Decision
}

// Result is one event's fate: an id (accepted: durably stored) or an error.
type Result struct {
	ID  string
	Err *Error
}

// Accepted counts the accepted results.
func (in Ingested) Accepted() int {
	n := 0
	for _, r := range in.Results {
		if r.Err == nil {
			n++
		}
	}
	return n
}

type ingestion struct {
	group   *groupCommit
	auth    *apikeys.Authenticator
	usage   *apikeys.UsageRecorder
	limiter ratelimit.Limiter
	metrics Metrics
}

func (i *ingestion) authenticate(ctx context.Context, a Authenticate) (*apikeys.Key, error) {
	if a.Plaintext == "" {
		return nil, &Error{Kind: Unauthorized, Message: "missing API key: send it as x-api-key, Authorization: Bearer, Authorization: Basic (the key as the user name), or in the body (writeKey, api_key)"}
	}
	k, err := i.auth.Authenticate(ctx, a.Plaintext)
	switch {
	case err == nil:
		if i.usage != nil {
			i.usage.Record(k)
		}
		return k, nil
	case errors.Is(err, apikeys.ErrMalformed):
		return nil, &Error{Kind: Unauthorized, Message: "malformed API key"}
	case errors.Is(err, apikeys.ErrRevoked):
		return nil, &Error{Kind: Unauthorized, Message: "this API key has been revoked"}
	case errors.Is(err, apikeys.ErrUnknown):
		return nil, &Error{Kind: Unauthorized, Message: "unknown API key"}
	default:
		return nil, unavailable("API key lookup", err)
	}
}

// ingest validates each event with the domain's one validation, refuses
// what the key may not send, takes the rate limit for the rest and stores
// them as commands in one round. A request whose every event was refused
// stores nothing; a rate limit or an outage refuses the whole request.
func (i *ingestion) ingest(ctx context.Context, in Ingest) (Ingested, error) {
	out := Ingested{Results: make([]Result, len(in.Events))}
	var tracked []commands.TrackEvent
	var at []int
	for n := range in.Events {
		cmd, problem := i.command(ctx, in.Key, &in.Events[n])
		if problem != nil {
			out.Results[n].Err = problem
			continue
		}
		tracked = append(tracked, *cmd)
		at = append(at, n)
	}
	i.metrics.Ingested("rejected", len(in.Events)-len(tracked))
	if len(tracked) == 0 {
		return out, nil
	}
	if err := i.limit(ctx, in.Key, len(tracked), &out); err != nil {
		return out, err
	}
	if err := i.group.track(ctx, tracked); err != nil {
		var fe *domain.FieldError
		if errors.As(err, &fe) {
			// The command refused what the edge accepted: a bug, never a retry.
			return out, &Error{Kind: Invalid, Field: fe.Field, Message: fe.Error(), Err: err}
		}
		return out, unavailable("the event log (NATS JetStream)", err)
	}
	for j := range tracked {
		out.Results[at[j]].ID = tracked[j].EventID
	}
	i.metrics.Ingested("accepted", len(tracked))
	return out, nil
}

// command validates one event and builds its command.
func (i *ingestion) command(ctx context.Context, k *apikeys.Key, e *Incoming) (*commands.TrackEvent, *Error) {
	if e.Problem != nil {
		return nil, e.Problem
	}
	d := e.Event
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = time.Now().UTC()
	}
	if err := domain.CheckName("event", d.Event); err != nil {
		return nil, invalidInput(err)
	}
	if !domain.KeyAllows(k.Type, d.Event) {
		return nil, &Error{Kind: Forbidden, Code: "forbidden_event", Field: "event",
			Message: fmt.Sprintf("event %q may only be sent with a secret key (sk_live_…): publishable keys are for browsers", d.Event)}
	}
	if domain.IsCommerce(d.Event) {
		d.Properties = domain.WholeAmount(d.Properties)
	}
	occurred := domain.CorrectedTime(d.Timestamp, d.SentAt, d.ReceivedAt)
	if err := domain.ValidateTracked(&d, occurred); err != nil {
		return nil, invalidInput(err)
	}
	d.KeyID, d.KeyType = k.ID, k.Type
	retryKey := d.MessageID
	if retryKey == "" {
		retryKey = e.RetryKey
	}
	return &commands.TrackEvent{Header: commands.NewHeader(CorrelationID(ctx)), EventID: domain.EventIDFor(k.ProjectID, retryKey),
		ProjectID: k.ProjectID, OrganizationID: k.OrganizationID, OccurredAt: occurred, Event: d}, nil
}

// limit takes n tokens for the key. A limiter outage lets the request
// through: losing events is worse.
func (i *ingestion) limit(ctx context.Context, k *apikeys.Key, n int, out *Ingested) error {
	if i.limiter == nil {
		return nil
	}
	d, err := i.limiter.Allow(ctx, k.ID, n)
	if err != nil {
		return nil
	}
	out.Limit = &d
	if d.Allowed {
		return nil
	}
	retry := time.Duration(max(1, int(math.Ceil(d.RetryAfter.Seconds())))) * time.Second
	return &Error{Kind: RateLimited, RetryAfter: retry,
		Message: fmt.Sprintf("rate limit of this key exceeded; retry in %d s", int(retry.Seconds()))}
}
