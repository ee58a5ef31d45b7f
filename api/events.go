package api

import (
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/readmodel"
)

// eventView is an event as the query API shows it.
type eventView struct {
	ID           string          `json:"id"`
	ProjectID    string          `json:"projectId"`
	Event        string          `json:"event"`
	UserID       *string         `json:"userId,omitempty"`
	AnonymousID  *string         `json:"anonymousId,omitempty"`
	Properties   json.RawMessage `json:"properties"`
	Context      json.RawMessage `json:"context,omitempty"`
	Integrations json.RawMessage `json:"integrations,omitempty"`
	MessageID    *string         `json:"messageId,omitempty"`
	Status       string          `json:"status"`
	ErrorDetails *string         `json:"errorDetails,omitempty"`
	Timestamp    *time.Time      `json:"timestamp,omitempty"`
	SentAt       *time.Time      `json:"sentAt,omitempty"`
	ReceivedAt   time.Time       `json:"receivedAt"`
	OccurredAt   time.Time       `json:"occurredAt"`
	ProcessedAt  *time.Time      `json:"processedAt,omitempty"`
}

func viewEvent(e *readmodel.Event) eventView {
	return eventView{ID: e.ID, ProjectID: e.ProjectID, Event: e.Type, UserID: e.UserID, AnonymousID: e.AnonymousID,
		Properties: e.Properties, Context: e.Context, Integrations: e.Integrations, MessageID: e.MessageID, Status: e.Status,
		ErrorDetails: e.ErrorDetails, Timestamp: e.ClientTimestamp, SentAt: e.SentAt, ReceivedAt: e.ReceivedAt,
		OccurredAt: e.OccurredAt, ProcessedAt: e.ProcessedAt}
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	projectID, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	eventID, e := pathID(r, "eventId")
	if e != nil {
		writeError(w, e)
		return
	}
	ev, err := s.queries(r).Event(r.Context(), projectID, eventID)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "event", eventID))
		return
	}
	writeJSON(w, http.StatusOK, viewEvent(ev))
}

func parseTimeParam(r *http.Request, name string) (time.Time, *Error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errBadRequest(name, "%s must be an RFC 3339 time such as 2026-11-28T00:00:00Z", name)
	}
	if t.Before(domain.MinTime) || t.After(maxQueryTime) {
		return time.Time{}, errBadRequest(name, "%s must be from %s to %s", name,
			domain.MinTime.Format(time.RFC3339), maxQueryTime.Format(time.RFC3339))
	}
	return queries.CeilMicro(t), nil
}

// maxQueryTime bounds the times a query may name: no event is later than a
// day after it arrived, and buckets around it must stay writable as RFC
// 3339 in every time zone.
var maxQueryTime = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	projectID, page, ok := idAndPage(w, r, "projectId")
	if !ok {
		return
	}
	q := r.URL.Query()
	f := queries.EventFilter{Types: eventTypes(r), UserID: q.Get("userId"), AnonymousID: q.Get("anonymousId"),
		Status: q.Get("status")}
	if len(f.Types) > 50 {
		writeError(w, errBadRequest("event", "at most 50 event types per query"))
		return
	}
	switch f.Status {
	case "", readmodel.StatusPending, readmodel.StatusProcessed, readmodel.StatusFailed:
	default:
		writeError(w, errBadRequest("status", "status must be pending, processed or failed"))
		return
	}
	var e *Error
	if f.From, e = parseTimeParam(r, "from"); e != nil {
		writeError(w, e)
		return
	}
	if f.To, e = parseTimeParam(r, "to"); e != nil {
		writeError(w, e)
		return
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		writeError(w, errBadRequest("from", "from must be before to"))
		return
	}
	evs, next, err := s.queries(r).Events(r.Context(), projectID, f, page)
	if err != nil {
		writeError(w, s.listError(r.Context(), err))
		return
	}
	writeList(w, evs, next, viewEvent)
}

// userView is an end user as the query API shows it.
type userView struct {
	ExternalID  string          `json:"externalId"`
	Traits      json.RawMessage `json:"traits"`
	FirstSeenAt time.Time       `json:"firstSeenAt"`
	LastSeenAt  time.Time       `json:"lastSeenAt"`
	EventCount  int64           `json:"eventCount"`
}

// userDetail is one end user with the ids linked to it and its latest
// events.
type userDetail struct {
	userView
	AnonymousIDs []string    `json:"anonymousIds"`
	RecentEvents []eventView `json:"recentEvents"`
}

func viewUser(u *readmodel.EndUser) userView {
	return userView{ExternalID: u.ExternalID, Traits: u.Traits, FirstSeenAt: u.FirstSeenAt, LastSeenAt: u.LastSeenAt,
		EventCount: u.EventCount}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	projectID, page, ok := idAndPage(w, r, "projectId")
	if !ok {
		return
	}
	prefix := r.URL.Query().Get("prefix")
	if utf8.RuneCountInString(prefix) > domain.MaxIDLen {
		writeError(w, errBadRequest("prefix", "prefix must be at most %d characters", domain.MaxIDLen))
		return
	}
	users, next, err := s.queries(r).EndUsers(r.Context(), projectID, queries.UserFilter{Prefix: prefix}, page)
	if err != nil {
		writeError(w, s.listError(r.Context(), err))
		return
	}
	writeList(w, users, next, viewUser)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	projectID, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	externalID := mux.Vars(r)["externalId"]
	if externalID == "" || utf8.RuneCountInString(externalID) > domain.MaxIDLen {
		writeError(w, errBadRequest("externalId", "externalId must be 1 to %d characters", domain.MaxIDLen))
		return
	}
	u, err := s.queries(r).EndUser(r.Context(), projectID, externalID)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "user", externalID))
		return
	}
	v := userDetail{userView: viewUser(u), RecentEvents: []eventView{}}
	if v.AnonymousIDs, err = s.queries(r).Aliases(r.Context(), projectID, externalID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "", ""))
		return
	}
	recent, _, err := s.queries(r).Events(r.Context(), projectID, queries.EventFilter{UserID: externalID}, queries.Page{Limit: 20})
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "", ""))
		return
	}
	for i := range recent {
		v.RecentEvents = append(v.RecentEvents, viewEvent(&recent[i]))
	}
	v.AnonymousIDs = nonNil(v.AnonymousIDs)
	writeJSON(w, http.StatusOK, v)
}
