package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// quarantineNamespace makes a quarantined record's id a function of where
// it is in the log, so setting the same record aside twice (a retried
// transaction, a replay meeting it again) keeps one row.
var quarantineNamespace = uuid.MustParse("9b7f6a52-4f3e-4f0b-9d55-0f1d4a3c2e11")

// QuarantineID is the id of the quarantined record of projection at a
// topic, partition and offset.
func QuarantineID(projection, topic string, partition int32, offset int64) string {
	pos := projection + "\x00" + topic + "\x00" + strconv.Itoa(int(partition)) + "\x00" + strconv.FormatInt(offset, 10)
	return uuid.NewSHA1(quarantineNamespace, []byte(pos)).String()
}

// quarantineEntry describes rec, which failed attempts times with err.
// What the envelope says of its tenant and event is kept to find it by;
// text that is itself unstorable (the likely reason it failed) is escaped,
// the record's bytes are kept as they were.
func quarantineEntry(projection string, rec *kgo.Record, err error, attempts int, firstSeen time.Time) *readmodel.QuarantinedRecord {
	now := time.Now().UTC()
	q := &readmodel.QuarantinedRecord{
		ID: QuarantineID(projection, rec.Topic, rec.Partition, rec.Offset), Projection: projection,
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value,
		Error: escapeText(err.Error(), 4096), Attempts: attempts, FirstSeenAt: firstSeen, LastSeenAt: now,
		Status: readmodel.QuarantineHeld,
	}
	if q.Value == nil {
		q.Value = []byte{}
	}
	var env struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		ProjectID string `json:"projectId"`
	}
	if json.Unmarshal(rec.Value, &env) == nil {
		q.ProjectID, q.EventID, q.EventType = optionalEscaped(env.ProjectID), optionalEscaped(env.ID), optionalEscaped(env.Type)
	}
	return q
}

// escapeText makes s safe for any text column, escaping what is not (it is
// a diagnostic, not data), and bounds it to n bytes.
func escapeText(s string, n int) string {
	if domain.TextProblem(s) != "" {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", `\x00`)
	}
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func optionalEscaped(s string) *string {
	if s == "" {
		return nil
	}
	s = escapeText(s, 255)
	return &s
}

// storeQuarantined keeps q; meeting the same record again counts another
// sighting.
func (r *Runner) storeQuarantined(ctx context.Context, tx bun.Tx, q *readmodel.QuarantinedRecord) error {
	if r.setAside != nil {
		return r.setAside(ctx, tx, q)
	}
	return upsertQuarantined(ctx, tx, q)
}

func upsertQuarantined(ctx context.Context, db bun.IDB, q *readmodel.QuarantinedRecord) error {
	if _, err := db.NewInsert().Model(q).On("CONFLICT (id) DO UPDATE").
		Set("attempts = quarantined_records.attempts + EXCLUDED.attempts").
		Set("last_seen_at = EXCLUDED.last_seen_at").
		Set("error = EXCLUDED.error").
		Set("status = EXCLUDED.status").
		Exec(ctx); err != nil {
		return fmt.Errorf("quarantining record %s/%d@%d: %w", q.Topic, q.Partition, q.Offset, err)
	}
	return nil
}

// ErrNotQuarantined is returned for a quarantined record id that does not
// exist or was already reprocessed.
var ErrNotQuarantined = errors.New("no such quarantined record")

// StillFailing is a reprocessed record the projection still cannot apply;
// it stays quarantined.
type StillFailing struct{ Err error }

func (e *StillFailing) Error() string { return "the record still cannot be applied: " + e.Err.Error() }
func (e *StillFailing) Unwrap() error { return e.Err }

// Reprocess applies a quarantined record of p again, once the cause is
// fixed, and marks it reprocessed in the same transaction, so it is
// applied exactly once however often it is asked for. It takes the same
// per-partition lock as the live runner. A record that still fails stays
// quarantined with one more attempt counted, and a *StillFailing is
// returned.
func Reprocess(ctx context.Context, db *store.DB, p Projection, id string) error {
	var applied []domain.Event
	var q readmodel.QuarantinedRecord
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sel := tx.NewSelect().Model(&q).Where("id = ?", id).Where("projection = ?", p.Name()).
			Where("status = ?", readmodel.QuarantineHeld)
		if db.Dialect == store.Postgres {
			sel = sel.For("UPDATE")
		}
		if err := sel.Scan(ctx); err != nil {
			if errors.Is(err, sqlErrNoRows) {
				return ErrNotQuarantined
			}
			return fmt.Errorf("loading quarantined record %s: %w", id, err)
		}
		r := &Runner{db: db, p: p, partitionLock: p.Name()}
		if err := r.lockPartition(ctx, tx, partitionKey{q.Topic, q.Partition}); err != nil {
			return err
		}
		var e domain.Event
		if err := json.Unmarshal(q.Value, &e); err != nil || e.ID == "" || e.Type == "" {
			if err == nil {
				err = errors.New("not an event envelope: no id or type")
			}
			return &StillFailing{fmt.Errorf("undecodable record: %w", err)}
		}
		if err := p.Apply(ctx, tx, db, []domain.Event{e}); err != nil {
			if store.IsTransient(err) {
				return err
			}
			return &StillFailing{err}
		}
		now := time.Now().UTC()
		if _, err := tx.NewUpdate().Model((*readmodel.QuarantinedRecord)(nil)).Where("id = ?", id).
			Set("status = ?", readmodel.QuarantineReprocessed).Set("resolved_at = ?", now).
			Set("last_seen_at = ?", now).Exec(ctx); err != nil {
			return fmt.Errorf("marking %s reprocessed: %w", id, err)
		}
		applied = []domain.Event{e}
		return nil
	})
	var still *StillFailing
	if errors.As(err, &still) {
		if _, uerr := db.NewUpdate().Model((*readmodel.QuarantinedRecord)(nil)).Where("id = ?", id).
			Set("attempts = attempts + 1").Set("last_seen_at = ?", time.Now().UTC()).
			Set("error = ?", escapeText(still.Err.Error(), 4096)).Exec(context.WithoutCancel(ctx)); uerr != nil {
			return errors.Join(err, fmt.Errorf("recording the attempt: %w", uerr))
		}
		return err
	}
	if err != nil {
		return err
	}
	if ac, ok := p.(AfterCommitter); ok {
		ac.AfterCommit(ctx, applied)
	}
	return nil
}

// errUnstorable marks a record whose content no database stores as it is.
var errUnstorable = errors.New("unstorable")

// checkIDs refuses ids that are not UUIDs: PostgreSQL's uuid columns would
// refuse them while SQLite's text columns took them.
func checkIDs(ids ...string) error {
	for _, id := range ids {
		if _, err := domain.ParseID(id); err != nil {
			return fmt.Errorf("%w: %v", errUnstorable, err)
		}
	}
	return nil
}

// checkText refuses text no database stores as it is.
func checkText(fields ...string) error {
	for _, s := range fields {
		if p := domain.TextProblem(s); p != "" {
			return fmt.Errorf("%w: text %q %s", errUnstorable, escapeText(s, 64), p)
		}
	}
	return nil
}

// checkTracked refuses a tracked event that no database stores as it is.
// The API refuses such events at the edge, but the log may hold one from
// before it did (or from another writer), and the live projection and a
// replay must treat it alike on both databases: they quarantine it, rather
// than one database taking what the other refuses.
func checkTracked(e *domain.Event, d *domain.TrackedData) error {
	if err := checkIDs(e.ID, e.ProjectID, d.KeyID); err != nil {
		return err
	}
	if err := checkText(d.Event, d.UserID, d.AnonymousID, d.MessageID, d.Reason); err != nil {
		return err
	}
	switch d.Outcome {
	case "", domain.OutcomeProcessed, domain.OutcomeFailed:
	default:
		return fmt.Errorf("%w: outcome %q is neither %q nor %q", errUnstorable, d.Outcome, domain.OutcomeProcessed,
			domain.OutcomeFailed)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"properties", d.Properties}, {"context", d.Context}} {
		if err := domain.CheckStorableJSON(f.name, f.raw); err != nil {
			return fmt.Errorf("%w: %v", errUnstorable, err)
		}
	}
	return nil
}

// checkOutcome refuses an outcome that no database stores as it is.
func checkOutcome(e *domain.Event, d *domain.OutcomeData) error {
	if err := checkIDs(e.ProjectID, d.EventID); err != nil {
		return err
	}
	return checkText(d.Reason)
}
