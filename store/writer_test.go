package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/store"
)

// On SQLite the writer runs every transaction, from any goroutine, on one
// connection it keeps with the writers' page cache, one at a time, and
// gives the connection back after a failed transaction and on Close.
func TestSQLiteWriterKeepsOneConnection(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := db.Writer

	// A temporary table lives on its connection only: seen again, the
	// transaction ran on the same one.
	if err := w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TEMP TABLE mark (n integer)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sameConn := func() bool {
		t.Helper()
		seen := true
		if err := w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO temp.mark VALUES (1)")
			seen = err == nil
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return seen
	}

	var inside, overlapped atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if err := db.Ping(ctx); err != nil { // a reader on another connection
					t.Error(err)
				}
				err := w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					if inside.Add(1) > 1 {
						overlapped.Add(1)
					}
					defer inside.Add(-1)
					var kib int
					if err := tx.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&kib); err != nil {
						return err
					}
					if kib != -store.WriterCacheKiB {
						t.Errorf("cache_size in a writer's transaction = %d, want %d", kib, -store.WriterCacheKiB)
					}
					_, err := tx.ExecContext(ctx, "INSERT INTO temp.mark VALUES (2)")
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if overlapped.Load() != 0 {
		t.Fatalf("%d transactions ran beside another", overlapped.Load())
	}
	if !sameConn() || db.Stats().InUse != 1 {
		t.Fatalf("after concurrent writers: same connection %v, in use %d; want the kept one", sameConn(), db.Stats().InUse)
	}

	failed := errors.New("no")
	if err := w.RunInTx(ctx, nil, func(context.Context, bun.Tx) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("RunInTx = %v, want %v", err, failed)
	}
	if db.Stats().InUse != 0 {
		t.Fatalf("after a failed transaction %d connections in use, want it given back", db.Stats().InUse)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db.Stats().InUse != 0 {
		t.Fatalf("after Close %d connections in use", db.Stats().InUse)
	}
}

// A checkpoint copies the whole write-ahead log back into the file when
// no reader holds an older snapshot, and does nothing on PostgreSQL.
func TestCheckpointEmptiesTheLog(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Writer.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE t (v text)"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "+
			"INSERT INTO t SELECT hex(randomblob(100)) FROM n")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	frames, done, err := db.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if frames < 10 || done != frames {
		t.Fatalf("Checkpoint = %d frames in the log, %d checkpointed; want all of at least 10", frames, done)
	}
}
