package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// Checkpoints returns every projection's next offset per partition: with
// the log's end offsets they give each projection's lag.
func (q *Queries) Checkpoints(ctx context.Context) ([]readmodel.Checkpoint, error) {
	var cps []readmodel.Checkpoint
	if err := q.idb.NewSelect().Model(&cps).Order("projection", "topic", "partition").Scan(ctx); err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	return cps, nil
}

// FailedSince counts the failed events of the given projects that happened
// at or after since, through their time index, in one query.
func (q *Queries) FailedSince(ctx context.Context, projectIDs []string, since time.Time) (int64, error) {
	if len(projectIDs) == 0 {
		return 0, nil
	}
	n, err := q.idb.NewSelect().Model((*readmodel.Event)(nil)).
		Where("project_id IN "+store.ProjectKeysSQL("(?)"), bun.In(projectIDs)).Where("occurred_at >= ?", since.UTC()).
		Where("status = ?", readmodel.StatusFailed).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("counting failed events: %w", err)
	}
	return int64(n), nil
}
