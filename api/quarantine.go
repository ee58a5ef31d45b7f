package api

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/quarantine"
)

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
	recs, err := s.app.Queries.Quarantine.List(r.Context(), f)
	if err != nil {
		writeError(w, fromApp(err))
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
	rec, err := s.app.Queries.Quarantine.Get(r.Context(), id)
	if err != nil {
		writeError(w, fromApp(err))
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
	rec, err := s.app.Commands.Reprocess.Handle(r.Context(), app.Reprocess{ID: id})
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	writeJSON(w, http.StatusOK, detail(rec))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
