package projections

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/store"
)

// A SQLite runner runs its transactions on one connection it keeps,
// whatever readers take from the pool in between, and gives it back when a
// transaction fails or it is done.
func TestRunnerKeepsItsSQLiteConnection(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "w.db")) // not migrated: no checkpoints table
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := &Runner{db: db, p: NewEvents("t")}

	txr, err := r.txRunner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := r.writer
	if kept == nil || txr != kept || db.Stats().InUse != 1 {
		t.Fatalf("txRunner: kept %v, returned %v, connections in use %d; want one kept", kept, txr, db.Stats().InUse)
	}
	for range 3 {
		if err := db.Ping(ctx); err != nil { // a reader on another connection
			t.Fatal(err)
		}
		if again, err := r.txRunner(ctx); err != nil || again != kept {
			t.Fatalf("txRunner after a read = %v (err %v), want the kept connection", again, err)
		}
	}

	if _, err := r.apply(ctx, []*kgo.Record{{Topic: "t", Value: []byte("{}")}}, nil); err == nil {
		t.Fatal("apply without a checkpoints table succeeded")
	}
	if r.writer != nil || db.Stats().InUse != 0 {
		t.Fatalf("after a failed transaction: writer %v, connections in use %d; want it given back", r.writer, db.Stats().InUse)
	}
	if _, err := r.txRunner(ctx); err != nil || r.writer == nil {
		t.Fatalf("txRunner after a failure: writer %v, err %v", r.writer, err)
	}
	r.releaseWriter()
	r.releaseWriter() // twice is harmless
	if db.Stats().InUse != 0 {
		t.Fatalf("connections in use after release = %d", db.Stats().InUse)
	}
}
