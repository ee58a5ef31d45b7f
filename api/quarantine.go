package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/quarantine"
)

// Quarantine is what the admin API lists and reprocesses: the records
// pipeline stages set aside so they could move on.
type Quarantine interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Record, error)
	Get(ctx context.Context, id string) (quarantine.Record, error)
	Reprocess(ctx context.Context, id string) (quarantine.Record, error)
}

// quarantineDetail is one record with its bytes: base64 always, and as
// text when they are valid UTF-8.
type quarantineDetail struct {
	quarantine.Record
	Raw     []byte `json:"raw"`
	RawText string `json:"rawText,omitempty"`
}

func detail(r quarantine.Record) quarantineDetail {
	d := quarantineDetail{Record: r, Raw: r.Raw}
	if utf8.Valid(r.Raw) {
		d.RawText = string(r.Raw)
	}
	return d
}

func (s *Server) listQuarantine(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := quarantine.Filter{Stage: q.Get("stage"), Status: q.Get("status")}
	switch f.Status {
	case "", quarantine.Held, quarantine.Reprocessed:
	default:
		writeError(w, errBadRequest("status", "status must be %s or %s", quarantine.Held, quarantine.Reprocessed))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > quarantine.MaxList {
			writeError(w, errBadRequest("limit", "limit must be an integer from 1 to %d", quarantine.MaxList))
			return
		}
		f.Limit = n
	}
	recs, err := s.cfg.Quarantine.List(r.Context(), f)
	if err != nil {
		writeError(w, s.quarantineError(r.Context(), err, ""))
		return
	}
	writeJSON(w, http.StatusOK, listResponse[quarantine.Record]{Data: nonNil(recs)})
}

func (s *Server) getQuarantined(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r, "id")
	if e != nil {
		writeError(w, e)
		return
	}
	rec, err := s.cfg.Quarantine.Get(r.Context(), id)
	if err != nil {
		writeError(w, s.quarantineError(r.Context(), err, id))
		return
	}
	writeJSON(w, http.StatusOK, detail(rec))
}

// reprocessQuarantined hands a record to its stage again: 200 with the
// record, now reprocessed; 409 when it was already, or still fails.
func (s *Server) reprocessQuarantined(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r, "id")
	if e != nil {
		writeError(w, e)
		return
	}
	rec, err := s.cfg.Quarantine.Reprocess(r.Context(), id)
	if err != nil {
		writeError(w, s.quarantineError(r.Context(), err, id))
		return
	}
	s.cfg.Log.InfoContext(r.Context(), "quarantined record reprocessed", "requestId", RequestID(r.Context()),
		"quarantineId", id, "stage", rec.Stage)
	writeJSON(w, http.StatusOK, detail(rec))
}

func (s *Server) quarantineError(ctx context.Context, err error, id string) *Error {
	var still *quarantine.StillFailing
	switch {
	case errors.Is(err, quarantine.ErrNotFound):
		return errNotFound("quarantined record", id)
	case errors.Is(err, quarantine.ErrAlreadyReprocessed):
		return &Error{Status: http.StatusConflict, Code: "already_reprocessed", Message: "quarantined record " + id + " was already reprocessed"}
	case errors.As(err, &still):
		return &Error{Status: http.StatusConflict, Code: "still_failing", Message: still.Error()}
	case errors.Is(err, bus.ErrUnavailable):
		s.cfg.Log.WarnContext(ctx, "quarantine unavailable", "requestId", RequestID(ctx), "err", err)
		return errUnavailable("NATS JetStream")
	}
	s.cfg.Log.ErrorContext(ctx, "quarantine operation failed", "requestId", RequestID(ctx), "err", err)
	return errUnavailable("the quarantine")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
