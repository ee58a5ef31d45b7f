package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The read-model rows verification looks at, mapped here rather than
// borrowed from readmodel/, so the instrument does not move when the code
// it measures does.

type eventRow struct {
	bun.BaseModel `bun:"table:events"`

	ID          string    `bun:"id"`
	Type        string    `bun:"type"`
	UserID      *string   `bun:"user_id"`
	AnonymousID *string   `bun:"anonymous_id"`
	MessageID   *string   `bun:"message_id"`
	Status      string    `bun:"status"`
	Details     *string   `bun:"error_details"`
	Rejected    bool      `bun:"rejected"`
	OccurredAt  time.Time `bun:"occurred_at"`
	Amount      *int64    `bun:"amount"`
	Currency    *string   `bun:"currency"`
}

type endUserRow struct {
	bun.BaseModel `bun:"table:end_users"`

	ExternalID string `bun:"external_id"`
	EventCount int64  `bun:"event_count"`
}

type hourlyRow struct {
	bun.BaseModel `bun:"table:event_counts_hourly"`

	EventType   string    `bun:"event_type"`
	BucketStart time.Time `bun:"bucket_start"`
	Count       int64     `bun:"count"`
}

type dailyRow struct {
	bun.BaseModel `bun:"table:event_counts_daily"`

	EventType string    `bun:"event_type"`
	Day       time.Time `bun:"day"`
	Count     int64     `bun:"count"`
}

type dailyUserRow struct {
	bun.BaseModel `bun:"table:daily_users"`

	Day        time.Time `bun:"day"`
	DistinctID string    `bun:"distinct_id"`
}

type revenueRow struct {
	bun.BaseModel `bun:"table:revenue_hourly"`

	Currency    string    `bun:"currency"`
	BucketStart time.Time `bun:"bucket_start"`
	Amount      int64     `bun:"amount"`
	Count       int64     `bun:"count"`
}

type activeUsersRow struct {
	bun.BaseModel `bun:"table:active_user_counts"`

	Period      string    `bun:"period"`
	PeriodStart time.Time `bun:"period_start"`
	Users       int64     `bun:"users"`
}

// reader reads one project's read model, never writing.
type reader struct {
	db      *bun.DB
	project string
}

// openPostgresReader reads the PostgreSQL database at url. The suite's
// role owns the tables, so row-level security does not hide rows.
func openPostgresReader(ctx context.Context, url, project string) (*reader, error) {
	sqldb, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("opening the read model: %w", err)
	}
	sqldb.SetMaxOpenConns(2)
	return pingReader(ctx, bun.NewDB(sqldb, pgdialect.New()), project)
}

// openSQLiteReader opens boost dev's SQLite file read-only. A time there is
// int64 µs since the epoch (migration 20261207000300), or text before it:
// the driver reads either into a time.
func openSQLiteReader(ctx context.Context, path, project string) (*reader, error) {
	sqldb, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)&_inttotime=1&_time_integer_format=unix_micro")
	if err != nil {
		return nil, fmt.Errorf("opening the read model %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(2)
	return pingReader(ctx, bun.NewDB(sqldb, sqlitedialect.New()), project)
}

func pingReader(ctx context.Context, db *bun.DB, project string) (*reader, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to the read model: %w", err)
	}
	return &reader{db: db, project: project}, nil
}

func (r *reader) close() { r.db.Close() }

// inProject is the condition that keeps the project's rows, its UUID the
// argument. The event tables key a project by an integer from
// project_keys (store.ProjectKeySQL); written out here, like the rows,
// so the instrument does not move with the code.
func (r *reader) inProject() string {
	return "project_id = (SELECT key FROM project_keys WHERE project_id = ?)"
}

// countEvents is how many event rows the project has.
func (r *reader) countEvents(ctx context.Context) (int64, error) {
	n, err := r.db.NewSelect().Model((*eventRow)(nil)).Where(r.inProject(), r.project).Count(ctx)
	return int64(n), err
}

// statuses maps every event id of the project to its status.
func (r *reader) statuses(ctx context.Context) (map[string]string, error) {
	var rows []struct {
		ID     string `bun:"id"`
		Status string `bun:"status"`
	}
	if err := r.db.NewSelect().Table("events").Column("id", "status").Where(r.inProject(), r.project).
		Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("reading event statuses: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, row := range rows {
		out[row.ID] = row.Status
	}
	return out, nil
}

// snapshot reads the project's events and every roll-up verification
// checks, in one read transaction so they agree with each other.
func (r *reader) snapshot(ctx context.Context) (*snapshot, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("starting the read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	var (
		events   []eventRow
		users    []endUserRow
		hourly   []hourlyRow
		daily    []dailyRow
		dayUsers []dailyUserRow
		revenue  []revenueRow
		active   []activeUsersRow
	)
	for _, m := range []struct {
		name  string
		model any
	}{{"events", &events}, {"end_users", &users}, {"event_counts_hourly", &hourly}, {"event_counts_daily", &daily},
		{"daily_users", &dayUsers}, {"revenue_hourly", &revenue}, {"active_user_counts", &active}} {
		if err := tx.NewSelect().Model(m.model).Where(r.inProject(), r.project).Scan(ctx); err != nil {
			return nil, fmt.Errorf("reading %s: %w", m.name, err)
		}
	}
	s := &snapshot{Events: events, Stored: newRollups()}
	for _, u := range users {
		s.Stored.EndUsers[u.ExternalID] = u.EventCount
	}
	for _, h := range hourly {
		s.Stored.Hourly[bucket(h.EventType, h.BucketStart)] += h.Count
	}
	for _, d := range daily {
		s.Stored.Daily[bucket(d.EventType, d.Day)] += d.Count
	}
	for _, d := range dayUsers {
		s.Stored.DailyUsers[bucket(d.DistinctID, d.Day)]++
	}
	for _, v := range revenue {
		k := bucket(v.Currency, v.BucketStart)
		s.Stored.Revenue[k] = s.Stored.Revenue[k].add(v.Amount, v.Count)
	}
	for _, a := range active {
		s.Stored.ActiveUsers[bucket(a.Period, a.PeriodStart)] += a.Users
	}
	return s, nil
}
