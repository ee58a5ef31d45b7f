package store

import (
	"context"
	"database/sql"
	"sync"

	"github.com/uptrace/bun"
)

// Writer runs a database's write transactions. On SQLite it runs them one
// at a time on one kept connection, with the writers' page cache
// (TakeWriter): SQLite has a single writer anyway, and a connection drops
// its whole page cache whenever another connection commits, so two
// projection runners on connections of their own made each other's hot
// index pages cold. Every 30 s the tenancy projection's key-usage commit
// cost the events projection's next batch 350–450 ms of re-reading pages,
// and each waited for the other in SQLite's busy handler, which sleeps in
// steps of up to 100 ms, instead of on a lock. On PostgreSQL it runs them
// on the pool.
type Writer struct {
	db   *DB
	mu   sync.Mutex
	conn *bun.Conn // nil until the first transaction, and after a failed one
}

// RunInTx runs fn in a transaction, after the one running (SQLite). A
// failed transaction gives its connection back to the pool, so a broken
// one is not kept.
func (w *Writer) RunInTx(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx bun.Tx) error) error {
	if w.db.Dialect != SQLite {
		return w.db.RunInTx(ctx, opts, fn)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := w.db.TakeWriter(ctx)
		if err != nil {
			return err
		}
		w.conn = c
	}
	err := w.conn.RunInTx(ctx, opts, fn)
	if err != nil {
		w.releaseLocked()
	}
	return err
}

// release gives the kept connection back to the pool.
func (w *Writer) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.releaseLocked()
}

func (w *Writer) releaseLocked() {
	if w.conn != nil {
		w.db.ReleaseWriter(context.Background(), w.conn)
		w.conn = nil
	}
}
