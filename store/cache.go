package store

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/uptrace/bun"
)

// SQLite page caches, per connection. A connection drops its whole cache
// whenever another connection commits, so a reader's cache lasts one read
// transaction at best, while the connection a projection runner keeps for
// its writes keeps its cache across its own commits: the hot index pages
// stay in it. Readers get a small cache and the kept writers a large one,
// which bounds the process's memory by the writers, not by the pool.
const (
	ReaderCacheKiB = 16 << 10
	WriterCacheKiB = 128 << 10
)

// TakeWriter takes a connection from the pool for a writer that keeps it
// for its transactions; on SQLite it gets the writers' page cache.
// ReleaseWriter gives it back.
func (db *DB) TakeWriter(ctx context.Context) (*bun.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("taking a writer connection: %w", err)
	}
	if err := db.SetCache(ctx, &c, WriterCacheKiB); err != nil {
		c.Close() //nolint:errcheck // the error above is the one that matters
		return nil, err
	}
	return &c, nil
}

// ReleaseWriter shrinks c's cache back to a reader's and returns c to the
// pool (or discards it, if it is broken).
func (db *DB) ReleaseWriter(ctx context.Context, c *bun.Conn) {
	if err := db.SetCache(context.WithoutCancel(ctx), c, ReaderCacheKiB); err != nil {
		c.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // so the pool discards it
	}
	c.Close() //nolint:errcheck // returned to the pool
}

// SetCache sets c's page cache to kib KiB on SQLite (ReaderCacheKiB is the
// pool's); elsewhere it does nothing.
func (db *DB) SetCache(ctx context.Context, c *bun.Conn, kib int) error {
	if db.Dialect != SQLite {
		return nil
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", kib)); err != nil {
		return fmt.Errorf("setting the page cache to %d KiB: %w", kib, err)
	}
	return nil
}
