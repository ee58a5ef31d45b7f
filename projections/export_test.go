package projections

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/store"
)

// LockPartition takes the lock a projection's runners take on a partition
// in each transaction, as a live batch in flight holds it.
func LockPartition(ctx context.Context, tx bun.Tx, db *store.DB, projection, topic string, partition int32) error {
	r := &Runner{db: db, partitionLock: projection}
	return r.lockPartition(ctx, tx, partitionKey{topic, partition})
}

// SetBulkWindow makes bulk builds write rows after n are held, so tests
// see outcomes arrive after their rows are written.
func SetBulkWindow(n int) func() {
	w, f := bulkWindow, bulkFlush
	bulkWindow, bulkFlush = n, max(1, n/2)
	return func() { bulkWindow, bulkFlush = w, f }
}
