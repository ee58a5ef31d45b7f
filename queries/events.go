package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
)

// SplitNames reads event names as query strings carry them: comma-separated
// lists, possibly repeated, blanks trimmed and empty names dropped.
func SplitNames(values ...string) []string {
	var names []string
	for _, v := range values {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	return names
}

// EventFilter narrows an event list. Zero values do not filter.
type EventFilter struct {
	Types       []string
	UserID      string
	AnonymousID string
	Status      string
	From, To    time.Time // occurredAt in [From, To)
}

// timeCursor resumes a newest-first list after (At, Key).
type timeCursor struct {
	At  time.Time `json:"t"`
	Key string    `json:"k"`
}

func encodeTimeCursor(at time.Time, key string) string {
	b, _ := json.Marshal(timeCursor{At: at.UTC(), Key: key})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeTimeCursor(s string) (*timeCursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadCursor
	}
	var c timeCursor
	if err := json.Unmarshal(b, &c); err != nil || c.At.IsZero() || c.Key == "" || len(c.Key) > 255 {
		return nil, ErrBadCursor
	}
	return &c, nil
}

func limitOf(p Page) int {
	if p.Limit <= 0 {
		return DefaultLimit
	}
	return p.Limit
}

// Events lists a project's events newest first (by occurredAt, then id).
// The cursor is the position of the last row returned, so rows inserted
// while a client pages never shift a page: no duplicates, no skips.
func (q *Queries) Events(ctx context.Context, projectID string, f EventFilter, p Page) ([]readmodel.Event, string, error) {
	cur, err := decodeTimeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	if cur != nil {
		if _, err := domain.ParseID(cur.Key); err != nil {
			return nil, "", ErrBadCursor
		}
	}
	limit := limitOf(p)
	rows := make([]readmodel.Event, 0, limit+1)
	s := q.idb.NewSelect().Model(&rows).Where(q.inProject(), projectID)
	if len(f.Types) == 1 {
		s = s.Where("type = ?", f.Types[0])
	} else if len(f.Types) > 1 {
		s = s.Where("type IN (?)", bun.In(f.Types))
	}
	if f.UserID != "" {
		s = s.Where("user_id = ?", f.UserID)
	}
	if f.AnonymousID != "" {
		s = s.Where("anonymous_id = ?", f.AnonymousID)
	}
	if f.Status != "" {
		s = s.Where("status = ?", f.Status)
	}
	if !f.From.IsZero() {
		s = s.Where("occurred_at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		s = s.Where("occurred_at < ?", f.To.UTC())
	}
	if cur != nil {
		s = s.Where("(occurred_at < ? OR (occurred_at = ? AND id < ?))", cur.At, cur.At, cur.Key)
	}
	if err := s.OrderExpr("occurred_at DESC, id DESC").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	for i := range rows {
		rows[i].ProjectID = projectID // the column holds its key
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		next = encodeTimeCursor(last.OccurredAt, last.ID)
	}
	return rows, next, nil
}

// UserFilter narrows a user list.
type UserFilter struct {
	Prefix string // external id prefix
}

// EndUsers lists a project's end users, most recently seen first.
func (q *Queries) EndUsers(ctx context.Context, projectID string, f UserFilter, p Page) ([]readmodel.EndUser, string, error) {
	cur, err := decodeTimeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := limitOf(p)
	rows := make([]readmodel.EndUser, 0, limit+1)
	s := q.idb.NewSelect().Model(&rows).Where(q.inProject(), projectID)
	if f.Prefix != "" {
		// Range instead of LIKE: no escaping of %/_ and it uses the key.
		s = s.Where("external_id >= ?", f.Prefix).Where("external_id < ?", f.Prefix+"\U0010FFFF")
	}
	if cur != nil {
		s = s.Where("(last_seen_at < ? OR (last_seen_at = ? AND external_id < ?))", cur.At, cur.At, cur.Key)
	}
	if err := s.OrderExpr("last_seen_at DESC, external_id DESC").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, "", fmt.Errorf("listing end users: %w", err)
	}
	for i := range rows {
		rows[i].ProjectID = projectID // the column holds its key
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		next = encodeTimeCursor(last.LastSeenAt, last.ExternalID)
	}
	return rows, next, nil
}

// Aliases returns the anonymous ids linked to a user.
func (q *Queries) Aliases(ctx context.Context, projectID, externalID string) ([]string, error) {
	var ids []string
	err := q.idb.NewSelect().Model((*readmodel.EndUserAlias)(nil)).Column("anonymous_id").
		Where(q.inProject(), projectID).Where("external_id = ?", externalID).
		OrderExpr("linked_at, anonymous_id").Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("listing aliases: %w", err)
	}
	return ids, nil
}
