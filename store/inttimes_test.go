package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// TestIntTimesMigration writes times as bun wrote them into SQLite before
// 20261207000300 (text, the fraction without trailing zeros) and expects
// each back to the µs once migrated, stored as an integer, and a time
// written since to compare with them in order.
func TestIntTimesMigration(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "times.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateBefore(ctx, "20261207000300"); err != nil {
		t.Fatal(err)
	}
	texts := map[string]time.Time{
		"2026-12-07 10:00:00+00:00":        time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		"2026-12-07 10:00:00.5+00:00":      time.Date(2026, 12, 7, 10, 0, 0, 500_000_000, time.UTC),
		"2026-12-07 10:00:00.000001+00:00": time.Date(2026, 12, 7, 10, 0, 0, 1_000, time.UTC),
		"1970-01-01 00:00:00.123456+00:00": time.Date(1970, 1, 1, 0, 0, 0, 123_456_000, time.UTC),
		"2099-12-31 23:59:59.99999+00:00":  time.Date(2099, 12, 31, 23, 59, 59, 999_990_000, time.UTC),
	}
	i := 0
	for text := range texts {
		i++
		if _, err := db.ExecContext(ctx, "INSERT INTO events (id, project_id, type, properties, key_id, status, received_at, occurred_at) "+
			"VALUES (?, 1, 'page_view', '{}', 'k', 'processed', ?, ?)", text, text, text); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO daily_users (project_id, day, distinct_id) VALUES (1, ?, ?)",
			text[:10]+" 00:00:00+00:00", text); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	for text, want := range texts {
		var e readmodel.Event
		if err := db.NewSelect().Model(&e).Where("id = ?", text).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if !e.OccurredAt.Equal(want) || !e.ReceivedAt.Equal(want) {
			t.Errorf("%s read back as %s, %s; want %s", text, e.OccurredAt, e.ReceivedAt, want)
		}
		var u readmodel.DailyUser
		if err := db.NewSelect().Model(&u).Where("distinct_id = ?", text).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if day := want.Truncate(24 * time.Hour); !u.Day.Equal(day) {
			t.Errorf("day of %s read back as %s, want %s", text, u.Day, day)
		}
	}
	var texty int
	if err := db.NewRaw("SELECT count(*) FROM events WHERE typeof(occurred_at) <> 'integer' OR typeof(received_at) <> 'integer'").
		Scan(ctx, &texty); err != nil || texty != 0 {
		t.Fatalf("%d events keep a time that is not an integer (%v)", texty, err)
	}
	if err := db.NewRaw("SELECT count(*) FROM daily_users WHERE typeof(day) <> 'integer'").Scan(ctx, &texty); err != nil || texty != 0 {
		t.Fatalf("%d days are not integers (%v)", texty, err)
	}
	// A time written now sorts among the migrated ones.
	var later int
	if err := db.NewRaw("SELECT count(*) FROM events WHERE occurred_at > ?", time.Date(2026, 12, 7, 10, 0, 0, 250_000_000, time.UTC)).
		Scan(ctx, &later); err != nil || later != 2 {
		t.Fatalf("%d events after 10:00:00.25, want 2 (%v)", later, err)
	}
}
