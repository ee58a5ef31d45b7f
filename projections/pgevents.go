package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/readmodel"
)

// eventColumnsPG are the PostgreSQL types of eventColumns, in their order.
var eventColumnsPG = []string{"uuid", "int4", "text", "text", "text", "jsonb", "jsonb", "text",
	"uuid", "text", "text", "timestamptz", "timestamptz", "timestamptz", "timestamptz", "timestamptz",
	"int8", "text", "bool", "jsonb"}

// insertEventsPG is insertEvents on PostgreSQL: the rows go as one array
// parameter a column, unnested into the table by one statement that pgx
// prepares once a connection.
//
// The same rows as a multi-row VALUES of inlined literals cost PostgreSQL
// about three times as much: 58–69 µs a row where an INSERT … SELECT of
// rows already parsed took 20–25 (20,000 rows of the events table, its
// four indexes, this 2-core machine; docs/benchmarks.md). The parser and
// planner walked every literal of every row, at every batch.
func insertEventsPG(ctx context.Context, tx bun.Tx, rows []*trackedRow) (map[string]bool, error) {
	if len(rows) == 0 {
		return map[string]bool{}, nil // a batch of outcomes only
	}
	var a pgEventArrays
	for _, r := range rows {
		if err := a.add(&r.row); err != nil {
			return nil, fmt.Errorf("inserting events: %w", err)
		}
	}
	res, err := tx.Tx.QueryContext(ctx, insertEventsPGQuery, a.args()...)
	if err != nil {
		return nil, fmt.Errorf("inserting events: %w", err)
	}
	defer res.Close()
	inserted := make(map[string]bool, len(rows))
	for res.Next() {
		var id string
		if err := res.Scan(&id); err != nil {
			return nil, fmt.Errorf("inserting events: %w", err)
		}
		inserted[id] = true
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("inserting events: %w", err)
	}
	return inserted, nil
}

// insertEventsPGQuery binds one array a column of eventColumns.
var insertEventsPGQuery = func() string {
	cast := make([]string, len(eventColumns))
	for i, t := range eventColumnsPG {
		cast[i] = fmt.Sprintf("$%d::%s[]", i+1, t)
	}
	return "INSERT INTO events (" + strings.Join(eventColumns, ", ") + ") SELECT * FROM unnest(" +
		strings.Join(cast, ", ") + ") ON CONFLICT (id) DO NOTHING RETURNING id"
}()

// pgEventArrays are event rows column by column, as insertEventsPGQuery
// binds them.
type pgEventArrays struct {
	ids, types, statuses, keys                         []string
	projects                                           []int32
	users, anons, messageIDs, errorDetails, currencies []*string
	properties, contexts, integrations                 []*string
	clientTimestamps, sentAt, processedAt              []*time.Time
	receivedAt, occurredAt                             []time.Time
	amounts                                            []*int64
	rejected                                           []bool
}

func (a *pgEventArrays) add(r *readmodel.Event) error {
	k, err := pgProjectKey(r.ProjectID)
	if err != nil {
		return err
	}
	a.ids = append(a.ids, r.ID)
	a.projects = append(a.projects, k)
	a.types = append(a.types, r.Type)
	a.users = append(a.users, r.UserID)
	a.anons = append(a.anons, r.AnonymousID)
	a.properties = append(a.properties, jsonParam(r.Properties))
	a.contexts = append(a.contexts, jsonParam(r.Context))
	a.messageIDs = append(a.messageIDs, r.MessageID)
	a.keys = append(a.keys, r.KeyID)
	a.statuses = append(a.statuses, r.Status)
	a.errorDetails = append(a.errorDetails, r.ErrorDetails)
	a.clientTimestamps = append(a.clientTimestamps, r.ClientTimestamp)
	a.sentAt = append(a.sentAt, r.SentAt)
	a.receivedAt = append(a.receivedAt, r.ReceivedAt)
	a.occurredAt = append(a.occurredAt, r.OccurredAt)
	a.processedAt = append(a.processedAt, r.ProcessedAt)
	a.amounts = append(a.amounts, r.Amount)
	a.currencies = append(a.currencies, r.Currency)
	a.rejected = append(a.rejected, r.Rejected)
	a.integrations = append(a.integrations, jsonParam(r.Integrations))
	return nil
}

// args are the arrays in eventColumns' order.
func (a *pgEventArrays) args() []any {
	return []any{a.ids, a.projects, a.types, a.users, a.anons, a.properties, a.contexts, a.messageIDs,
		a.keys, a.statuses, a.errorDetails, a.clientTimestamps, a.sentAt, a.receivedAt, a.occurredAt, a.processedAt,
		a.amounts, a.currencies, a.rejected, a.integrations}
}

// jsonParam is a JSON column's value: empty is NULL, as the bulk COPY
// writes it (pgCopyRows.jsonb).
func jsonParam(j []byte) *string {
	if len(j) == 0 {
		return nil
	}
	s := string(j)
	return &s
}
