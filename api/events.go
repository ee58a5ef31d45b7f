package api

import (
	"encoding/json"
	"net/http"
	"time"

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
		Properties: e.Properties, Context: e.Context, MessageID: e.MessageID, Status: e.Status,
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
	ev, err := s.cfg.Queries.Event(r.Context(), projectID, eventID)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "event", eventID))
		return
	}
	writeJSON(w, http.StatusOK, viewEvent(ev))
}
