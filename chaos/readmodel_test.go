package chaos

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// TestSQLiteReaderReadsStoredTimes writes an event and its day's user as
// Boost does (store's SQLite dialect: int64 µs) and reads them back with
// the instrument's own reader, which must see the same times.
func TestSQLiteReaderReadsStoredTimes(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "boost.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	project := uuid.NewString()
	keys, err := store.ProjectKeys(ctx, db.DB, []string{project})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 10, 11, 12, 345_678_000, time.UTC)
	day := at.Truncate(24 * time.Hour)
	user := "u1"
	e := readmodel.Event{ID: uuid.NewString(), ProjectID: keys[project], Type: "page_view", UserID: &user,
		Properties: []byte(`{}`), KeyID: uuid.NewString(), Status: readmodel.StatusProcessed, ReceivedAt: at, OccurredAt: at}
	if _, err := db.NewInsert().Model(&e).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	du := readmodel.DailyUser{ProjectID: keys[project], Day: day, DistinctID: user}
	if _, err := db.NewInsert().Model(&du).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	r, err := openSQLiteReader(ctx, path, project)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	s, err := r.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Events) != 1 || !s.Events[0].OccurredAt.Equal(at) {
		t.Fatalf("events = %+v, want one at %s", s.Events, at)
	}
	if n := s.Stored.DailyUsers[bucket(user, day)]; n != 1 {
		t.Fatalf("daily users = %v, want %s on %s", s.Stored.DailyUsers, user, day)
	}
}
