package app

import (
	"context"
	"errors"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/quarantine"
)

// Reprocess hands a quarantined record back to its stage, once its cause
// is fixed.
type Reprocess struct{ ID string }

type reprocessor struct{ svc *quarantine.Service }

func (r reprocessor) reprocess(ctx context.Context, c Reprocess) (quarantine.Record, error) {
	rec, err := r.svc.Reprocess(ctx, c.ID)
	return rec, quarantineError(err, c.ID)
}

type quarantineReader struct{ svc *quarantine.Service }

func (q quarantineReader) List(ctx context.Context, f quarantine.Filter) ([]quarantine.Record, error) {
	recs, err := q.svc.List(ctx, f)
	return recs, quarantineError(err, "")
}

func (q quarantineReader) Get(ctx context.Context, id string) (quarantine.Record, error) {
	rec, err := q.svc.Get(ctx, id)
	return rec, quarantineError(err, id)
}

func (q quarantineReader) Counts(ctx context.Context) (map[string]int, error) {
	n, err := q.svc.Counts(ctx)
	return n, quarantineError(err, "")
}

func quarantineError(err error, id string) error {
	var still *quarantine.StillFailing
	switch {
	case err == nil:
		return nil
	case errors.Is(err, quarantine.ErrNotFound):
		return notFound("quarantined record", id)
	case errors.Is(err, quarantine.ErrAlreadyReprocessed):
		return &Error{Kind: Conflict, Code: "already_reprocessed", Message: "quarantined record " + id + " was already reprocessed"}
	case errors.As(err, &still):
		return &Error{Kind: Conflict, Code: "still_failing", Message: still.Error(), Err: err}
	case errors.Is(err, bus.ErrUnavailable):
		return unavailable("NATS JetStream", err)
	}
	return unavailable("the quarantine", err)
}
