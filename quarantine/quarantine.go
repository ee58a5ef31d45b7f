// Package quarantine is the operator's view of the records pipeline stages
// set aside so they could move on: a projection's (kept in the read-model
// database beside its checkpoints) and the command handlers', the event
// processor's and the bridge's (kept in JetStream). It lists them and
// reprocesses one once its cause is fixed, by handing it to its own stage's
// code again, so its effect is applied exactly once.
package quarantine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// Statuses.
const (
	Held        = readmodel.QuarantineHeld
	Reprocessed = readmodel.QuarantineReprocessed
)

// Record is one quarantined record, wherever it is kept.
type Record struct {
	ID    string `json:"id"`
	Stage string `json:"stage"`
	// Where it was: a Kafka position for a projection's, a stream
	// sequence for a write-side stage's.
	Topic       string     `json:"topic,omitempty"`
	Partition   *int32     `json:"partition,omitempty"`
	Offset      *int64     `json:"offset,omitempty"`
	Stream      string     `json:"stream,omitempty"`
	Subject     string     `json:"subject,omitempty"`
	Sequence    *uint64    `json:"sequence,omitempty"`
	ProjectID   string     `json:"projectId,omitempty"`
	EventID     string     `json:"eventId,omitempty"`
	EventType   string     `json:"eventType,omitempty"`
	Error       string     `json:"error"`
	Attempts    int        `json:"attempts"`
	FirstSeenAt time.Time  `json:"firstSeenAt"`
	LastSeenAt  time.Time  `json:"lastSeenAt"`
	Status      string     `json:"status"`
	ResolvedAt  *time.Time `json:"resolvedAt,omitempty"`
	// Raw is the record's bytes as the stage received them.
	Raw []byte `json:"-"`
}

// Filter narrows a listing.
type Filter struct {
	Stage  string // "" for all
	Status string // "" for all, Held or Reprocessed
	Limit  int    // at most MaxList; 0 for DefaultList
}

// Listing bounds.
const (
	DefaultList = 100
	MaxList     = 1000
)

// ErrNotFound is returned for an id no quarantine holds.
var ErrNotFound = errors.New("no such quarantined record")

// ErrAlreadyReprocessed is returned when asked to reprocess a record twice.
var ErrAlreadyReprocessed = errors.New("the record was already reprocessed")

// StillFailing is a reprocessed record its stage still cannot handle; it
// stays quarantined.
type StillFailing struct{ Err error }

func (e *StillFailing) Error() string { return "the record still cannot be handled: " + e.Err.Error() }
func (e *StillFailing) Unwrap() error { return e.Err }

// Reprocessor hands a quarantined message back to its write-side stage.
type Reprocessor func(ctx context.Context, m bus.QuarantinedMessage) error

// Service lists and reprocesses quarantined records.
type Service struct {
	db           *store.DB
	projections  []projections.Projection
	messages     *bus.Quarantine
	reprocessors map[string]Reprocessor
}

// New returns the service over the read-model database (its projections'
// records) and, when messages is set, the write side's quarantine stream
// with a reprocessor per write-side stage.
func New(db *store.DB, ps []projections.Projection, messages *bus.Quarantine, reprocessors map[string]Reprocessor) (*Service, error) {
	if db == nil {
		return nil, errors.New("quarantine: a database is required")
	}
	return &Service{db: db, projections: ps, messages: messages, reprocessors: reprocessors}, nil
}

// List returns quarantined records, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultList
	}
	f.Limit = min(f.Limit, MaxList)
	var out []Record
	if f.Stage == "" || strings.HasPrefix(f.Stage, "projection ") {
		var rows []readmodel.QuarantinedRecord
		q := s.db.NewSelect().Model(&rows).Order("last_seen_at DESC", "id DESC").Limit(int64(f.Limit))
		if f.Stage != "" {
			q = q.Where("projection = ?", strings.TrimPrefix(f.Stage, "projection "))
		}
		if f.Status != "" {
			q = q.Where("status = ?", f.Status)
		}
		if err := q.Scan(ctx); err != nil {
			return nil, fmt.Errorf("listing quarantined records: %w", err)
		}
		for i := range rows {
			out = append(out, fromRow(&rows[i]))
		}
	}
	if s.messages != nil && !strings.HasPrefix(f.Stage, "projection ") {
		msgs, err := s.messages.List(ctx, MaxList)
		if err != nil {
			return nil, err
		}
		for i := range msgs {
			r := fromMessage(&msgs[i])
			if (f.Stage == "" || r.Stage == f.Stage) && (f.Status == "" || r.Status == f.Status) {
				out = append(out, r)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return b.LastSeenAt.Compare(a.LastSeenAt) })
	return out[:min(len(out), f.Limit)], nil
}

// Counts returns how many records each stage holds (not reprocessed).
func (s *Service) Counts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	var rows []struct {
		Projection string `bun:"projection"`
		N          int    `bun:"n"`
	}
	if err := s.db.NewSelect().Table("quarantined_records").ColumnExpr("projection, count(*) AS n").
		Where("status = ?", Held).Group("projection").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("counting quarantined records: %w", err)
	}
	for _, r := range rows {
		out[projections.StageName(r.Projection)] = r.N
	}
	if s.messages != nil {
		counts, err := s.messages.Counts(ctx)
		if err != nil {
			return nil, err
		}
		for stage, n := range counts {
			out[stage] += n
		}
	}
	return out, nil
}

// Get returns one record with its raw bytes.
func (s *Service) Get(ctx context.Context, id string) (Record, error) {
	var row readmodel.QuarantinedRecord
	err := s.db.NewSelect().Model(&row).Where("id = ?", id).Scan(ctx)
	if err == nil {
		return fromRow(&row), nil
	}
	if !errors.Is(err, errNoRows) {
		return Record{}, fmt.Errorf("reading quarantined record %s: %w", id, err)
	}
	if s.messages != nil {
		m, err := s.messages.Get(ctx, id)
		if err == nil {
			return fromMessage(&m), nil
		}
		if !errors.Is(err, bus.ErrNotQuarantined) {
			return Record{}, err
		}
	}
	return Record{}, ErrNotFound
}

// Reprocess hands record id to its stage again and returns it as it is
// afterwards. A projection's record is applied and marked reprocessed in
// one transaction; a write-side message is handed to its stage, whose
// handlers are idempotent, and then marked reprocessed.
func (s *Service) Reprocess(ctx context.Context, id string) (Record, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if r.Status == Reprocessed {
		return r, ErrAlreadyReprocessed
	}
	if strings.HasPrefix(r.Stage, "projection ") {
		err = s.reprocessRow(ctx, r)
	} else {
		err = s.reprocessMessage(ctx, id, r)
	}
	if err != nil {
		return Record{}, err
	}
	return s.Get(ctx, id)
}

func (s *Service) reprocessRow(ctx context.Context, r Record) error {
	name := strings.TrimPrefix(r.Stage, "projection ")
	i := slices.IndexFunc(s.projections, func(p projections.Projection) bool { return p.Name() == name })
	if i < 0 {
		return fmt.Errorf("reprocessing %s: this process does not run projection %q", r.ID, name)
	}
	err := projections.Reprocess(ctx, s.db, s.projections[i], r.ID)
	var still *projections.StillFailing
	switch {
	case errors.As(err, &still):
		return &StillFailing{still.Err}
	case errors.Is(err, projections.ErrNotQuarantined):
		return ErrAlreadyReprocessed // it was there a moment ago: someone else reprocessed it
	}
	return err
}

func (s *Service) reprocessMessage(ctx context.Context, id string, r Record) error {
	m, err := s.messages.Get(ctx, id)
	if err != nil {
		return err
	}
	fn, ok := s.reprocessors[r.Stage]
	if !ok {
		return fmt.Errorf("reprocessing %s: this process cannot reprocess stage %q", id, r.Stage)
	}
	if err := fn(ctx, m); err != nil {
		if errors.Is(err, bus.ErrUnavailable) {
			return err
		}
		return &StillFailing{err}
	}
	return s.messages.Resolve(ctx, id)
}

func fromRow(q *readmodel.QuarantinedRecord) Record {
	part, off := q.Partition, q.Offset
	r := Record{ID: q.ID, Stage: projections.StageName(q.Projection), Topic: q.Topic, Partition: &part, Offset: &off,
		Error: q.Error, Attempts: q.Attempts, FirstSeenAt: q.FirstSeenAt.UTC(), LastSeenAt: q.LastSeenAt.UTC(),
		Status: q.Status, ResolvedAt: q.ResolvedAt, Raw: q.Value}
	r.ProjectID, r.EventID, r.EventType = deref(q.ProjectID), deref(q.EventID), deref(q.EventType)
	return r
}

func fromMessage(m *bus.QuarantinedMessage) Record {
	seq := m.Sequence
	r := Record{ID: m.ID, Stage: m.Stage, Stream: m.Stream, Subject: m.Subject, Sequence: &seq, Error: m.Error,
		Attempts: m.Attempts, FirstSeenAt: m.FirstSeenAt.UTC(), LastSeenAt: m.LastSeenAt.UTC(), Status: Held, Raw: m.Data}
	if m.Reprocessed {
		r.Status, r.ResolvedAt = Reprocessed, m.ReprocessedAt
	}
	r.ProjectID, r.EventID, r.EventType = envelopeOf(m.Data)
	return r
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var errNoRows = sql.ErrNoRows

// envelopeOf reads what a message says of its tenant and event, to find
// it by: an event envelope's id, type and project, or a command's.
func envelopeOf(data []byte) (projectID, eventID, eventType string) {
	var v struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		ProjectID string `json:"projectId"`
		EventID   string `json:"eventId"`
	}
	if json.Unmarshal(data, &v) != nil {
		return "", "", ""
	}
	if v.EventID == "" {
		v.EventID = v.ID
	}
	return text(v.ProjectID), text(v.EventID), text(v.Type)
}

// text keeps a diagnostic field displayable.
func text(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", `\x00`), "\uFFFD")
	if len(s) > 255 {
		s = strings.ToValidUTF8(s[:255], "") + "…"
	}
	return s
}
