package store_test

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/store"
)

// The pool's connections have a reader's page cache; a connection taken
// as a writer has a writer's until it is given back, and the pool then
// hands it out with a reader's again.
func TestWriterCache(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			db.SetMaxOpenConns(1) // one connection: the writer's is the pool's next
			cache := func(idb bun.IConn) int {
				t.Helper()
				if db.Dialect != store.SQLite {
					return 0
				}
				var kib int
				if err := idb.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&kib); err != nil {
					t.Fatal(err)
				}
				return -kib
			}
			want := func(kib int) int {
				if db.Dialect != store.SQLite {
					return 0
				}
				return kib
			}
			if got := cache(db); got != want(store.ReaderCacheKiB) {
				t.Fatalf("pool cache = %d KiB, want %d", got, want(store.ReaderCacheKiB))
			}
			w, err := db.TakeWriter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := cache(w); got != want(store.WriterCacheKiB) {
				t.Fatalf("writer cache = %d KiB, want %d", got, want(store.WriterCacheKiB))
			}
			db.ReleaseWriter(context.Background(), w)
			if got := cache(db); got != want(store.ReaderCacheKiB) {
				t.Fatalf("pool cache after the writer = %d KiB, want %d", got, want(store.ReaderCacheKiB))
			}
		})
	}
}
