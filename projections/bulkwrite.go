package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// bulkWriter writes a bulk build's rows into the shadow tables over one
// connection.
type bulkWriter interface {
	events(ctx context.Context, rows []*readmodel.Event) error
	// rows writes n rows of any other table, row giving each one's values
	// as strings, project keys, int64s, *int64s, times and JSON; the writer
	// converts them for its database (a projectKey to PostgreSQL's integer,
	// JSON to SQLite's text; a time goes to the driver as it is).
	rows(ctx context.Context, table string, columns []string, n int, row func(i int, v []any)) error
	exec(ctx context.Context, query string) error
	// indexPlan splits indexes into statements that can run side by side
	// and those that must follow them.
	indexPlan(ctx context.Context, table string) (build, finish []string, err error)
	// inTx runs fn in a transaction that sees the shadow tables under
	// their plain names.
	inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error
	close()
}

var eventColumns = []string{"id", "project_id", "type", "user_id", "anonymous_id", "properties", "context", "message_id",
	"key_id", "status", "error_details", "client_timestamp", "sent_at", "received_at", "occurred_at", "processed_at",
	"amount", "currency", "rejected", "integrations"}

// The columns of the other tables a bulk build writes, in the order both
// writers give their values.
var (
	endUserColumns     = []string{"project_id", "external_id", "traits", "trait_versions", "first_seen_at", "last_seen_at", "event_count"}
	aliasColumns       = []string{"project_id", "anonymous_id", "external_id", "linked_at"}
	hourlyColumns      = []string{"project_id", "event_type", "bucket_start", "count"}
	dailyCountColumns  = []string{"project_id", "event_type", "day", "count"}
	revenueColumns     = []string{"project_id", "currency", "bucket_start", "amount", "count"}
	typeDayColumns     = []string{"project_id", "event_type", "distinct_id", "day", "first_at", "last_at", "prev_last_at"}
	dailyUserColumns   = []string{"project_id", "day", "distinct_id"}
	weeklyUserColumns  = []string{"project_id", "distinct_id", "week"}
	monthlyUserColumns = []string{"project_id", "distinct_id", "month"}
	activeCountColumns = []string{"project_id", "period", "period_start", "users"}
)

func newBulkWriter(ctx context.Context, db *store.DB, schema string) (bulkWriter, error) {
	if db.Dialect == store.Postgres {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("replay: bulk connection: %w", err)
		}
		// Sorts for DISTINCT, GROUP BY and index builds of millions of rows
		// stay in memory instead of spilling to disk. Index builds run
		// without parallel workers: the connections already build two at a
		// time, and workers on top of that made the build slower (15.3–15.8
		// s against 12.9–14.3 s on two cores).
		for _, s := range []string{"SET work_mem = '256MB'", "SET maintenance_work_mem = '512MB'", "SET max_parallel_maintenance_workers = 0"} {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				conn.Close()
				return nil, err
			}
		}
		return &pgBulk{conn: conn, schema: schema}, nil
	}
	conn, err := db.TakeWriter(ctx) // a writer's page cache, as the live runner's
	if err != nil {
		return nil, fmt.Errorf("replay: bulk connection: %w", err)
	}
	// The shadow file is thrown away if the replay dies: durability
	// before the swap buys nothing.
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = OFF"); err != nil {
		db.ReleaseWriter(ctx, conn)
		return nil, err
	}
	return &sqliteBulk{db: db, conn: conn}, nil
}

// pgBulk loads with COPY into tables created without indexes, then copies
// the live tables' constraints and indexes, names included.
type pgBulk struct {
	conn    bun.Conn
	schema  string
	copyBuf pgCopyRows // the events' rows, encoded
}

func (w *pgBulk) close() {
	// The connection goes back to the pool as it came.
	_, _ = w.conn.ExecContext(context.Background(), "RESET work_mem; RESET maintenance_work_mem; RESET max_parallel_maintenance_workers")
	w.conn.Close()
}

func (w *pgBulk) copyFrom(ctx context.Context, table string, columns []string, n int, row func(i int, vals []any) error) error {
	return w.conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		vals := make([]any, len(columns))
		i := -1
		var rowErr error
		src := pgx.CopyFromFunc(func() ([]any, error) {
			i++
			if i >= n {
				return nil, nil
			}
			if rowErr = row(i, vals); rowErr != nil {
				return nil, rowErr
			}
			return vals, nil
		})
		if _, err := c.CopyFrom(ctx, pgx.Identifier{w.schema, table}, columns, src); err != nil {
			return fmt.Errorf("replay: copying into %s: %w", table, err)
		}
		return nil
	})
}

// projectKey is a value for a keyed project_id column: the project's key
// in decimal (store.ProjectKeys), which each writer turns into what its
// database takes. A project_id that is a plain string (orphan_outcomes')
// is the project's UUID and stays one.
type projectKey string

// pgProjectKey is a project's key (store.ProjectKeys' decimal) as the
// hot tables' integer column takes it.
func pgProjectKey(s string) (int32, error) {
	k, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("replay: %q is not a project key", s)
	}
	return int32(k), nil
}

func (w *pgBulk) rows(ctx context.Context, table string, columns []string, n int, row func(i int, v []any)) error {
	var last projectKey
	var lastKey int32
	return w.copyFrom(ctx, table, columns, n, func(i int, v []any) error {
		row(i, v)
		for j, x := range v {
			k, ok := x.(projectKey)
			if !ok {
				continue
			}
			// Rows come grouped by project: one parse a project.
			if k != last || lastKey == 0 {
				pk, err := pgProjectKey(string(k))
				if err != nil {
					return err
				}
				last, lastKey = k, pk
			}
			v[j] = lastKey
		}
		return nil
	})
}

func (w *pgBulk) exec(ctx context.Context, query string) error {
	if _, err := w.conn.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("replay: %s: %w", query, err)
	}
	return nil
}

func (w *pgBulk) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return w.conn.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+w.schema); err != nil {
			return err
		}
		return fn(ctx, tx)
	})
}

var indexTarget = regexp.MustCompile(` ON (ONLY )?\S+ USING `)

// indexPlan returns the statements that build a shadow table's indexes,
// which may run side by side, and those that finish it once they are
// built: primary keys and unique constraints made of their indexes, and
// statistics.
func (w *pgBulk) indexPlan(ctx context.Context, table string) (build, finish []string, err error) {
	var constraints []struct {
		Name string `bun:"conname"`
		Def  string `bun:"def"`
	}
	if err := w.conn.NewRaw("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "+
		"WHERE conrelid = to_regclass(?) AND contype IN ('p', 'u') ORDER BY contype, conname", table).Scan(ctx, &constraints); err != nil {
		return nil, nil, fmt.Errorf("replay: reading constraints of %s: %w", table, err)
	}
	var indexes []string
	if err := w.conn.NewRaw("SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(?) "+
		"AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1", table).Scan(ctx, &indexes); err != nil {
		return nil, nil, fmt.Errorf("replay: reading indexes of %s: %w", table, err)
	}
	target := fmt.Sprintf(" ON %s.%s USING ", w.schema, table)
	qualified := w.schema + "." + table
	for _, c := range constraints {
		kind, cols, ok := strings.Cut(c.Def, " (")
		if ok && (kind == "PRIMARY KEY" || kind == "UNIQUE") && strings.HasSuffix(cols, ")") && !strings.Contains(cols, "(") {
			build = append(build, fmt.Sprintf("CREATE UNIQUE INDEX %q ON %s (%s", c.Name, qualified, cols))
			finish = append(finish, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %q %s USING INDEX %q", qualified, c.Name, kind, c.Name))
		} else {
			finish = append(finish, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %q %s", qualified, c.Name, c.Def))
		}
	}
	for _, def := range indexes {
		if !indexTarget.MatchString(def) {
			return nil, nil, fmt.Errorf("replay: cannot copy index %q", def)
		}
		build = append(build, indexTarget.ReplaceAllLiteralString(def, target))
	}
	// Statistics for the planner; the sets top events and retention read
	// get their visibility map too, so those reads scan their keys only.
	analyze := "ANALYZE"
	if table == "daily_event_users" || table == "weekly_users" {
		analyze = "VACUUM (ANALYZE)"
	}
	finish = append(finish, fmt.Sprintf("%s %s", analyze, qualified))
	return build, finish, nil
}

// sqliteBulk inserts many rows a statement and a transaction into the
// shadow file, which has no secondary indexes: the swap copies its rows
// into the live tables, whose indexes stay.
type sqliteBulk struct {
	db   *store.DB
	conn *bun.Conn
}

func (w *sqliteBulk) close() { w.db.ReleaseWriter(context.Background(), w.conn) }

// timePtr is an optional time as a bound value: the driver writes a time
// as store's SQLite DSN says (int64 µs), and NULL for none.
func timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func strPtr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

const sqliteRowsPerInsert = 256

func (w *sqliteBulk) insert(ctx context.Context, table string, columns []string, n int, row func(i int, vals []any)) error {
	tx, err := w.conn.Conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	if err := sqliteInsert(ctx, tx, table, columns, n, row, "", nil); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return tx.Commit()
}

// sqliteInsert inserts n rows into table in tx, sqliteRowsPerInsert a
// statement, their values bound to a statement prepared once (row puts
// row i's values into v in columns' order): the bulk build's writes and
// the live events insert alike. suffix follows the VALUES (an ON
// CONFLICT, a RETURNING); read, if set, reads what each statement
// returns. OR FAIL: no statement journal (see store.Insert).
func sqliteInsert(ctx context.Context, tx *sql.Tx, table string, columns []string, n int, row func(i int, v []any),
	suffix string, read func(*sql.Rows) error,
) error {
	one := store.Placeholders(len(columns))
	head := "INSERT OR FAIL INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES "
	stmtFor := func(rows int) string {
		return head + strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ") + suffix
	}
	var full *sql.Stmt
	if n >= sqliteRowsPerInsert {
		var err error
		if full, err = tx.PrepareContext(ctx, stmtFor(sqliteRowsPerInsert)); err != nil {
			return fmt.Errorf("inserting into %s: %w", table, err)
		}
		defer full.Close()
	}
	args := make([]any, 0, min(n, sqliteRowsPerInsert)*len(columns))
	vals := make([]any, len(columns))
	for start := 0; start < n; start += sqliteRowsPerInsert {
		end := min(start+sqliteRowsPerInsert, n)
		args = args[:0]
		for i := start; i < end; i++ {
			row(i, vals)
			args = append(args, vals...)
		}
		if err := sqliteExec(ctx, tx, full, stmtFor, end-start, args, read); err != nil {
			return fmt.Errorf("inserting into %s: %w", table, err)
		}
	}
	return nil
}

// sqliteExec runs one statement of sqliteInsert: the prepared one for a
// full chunk, another for the rest.
func sqliteExec(ctx context.Context, tx *sql.Tx, full *sql.Stmt, stmtFor func(int) string, rows int, args []any,
	read func(*sql.Rows) error,
) error {
	if read == nil {
		var err error
		if rows == sqliteRowsPerInsert {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, stmtFor(rows), args...)
		}
		return err
	}
	var res *sql.Rows
	var err error
	if rows == sqliteRowsPerInsert {
		res, err = full.QueryContext(ctx, args...)
	} else {
		res, err = tx.QueryContext(ctx, stmtFor(rows), args...)
	}
	if err != nil {
		return err
	}
	defer res.Close()
	if err := read(res); err != nil {
		return err
	}
	return res.Err()
}

func (w *sqliteBulk) events(ctx context.Context, rows []*readmodel.Event) error {
	return w.insert(ctx, "events", eventColumns, len(rows), func(i int, v []any) { sqliteEventValues(rows[i], v) })
}

// sqliteEventValues puts r's values into v in eventColumns' order, as both
// the bulk build and the live projection bind them on SQLite: JSON as
// text, NULL for none, a bool as 0 or 1.
func sqliteEventValues(r *readmodel.Event, v []any) {
	var ctxJSON, integrations any
	if len(r.Context) > 0 {
		ctxJSON = string(r.Context)
	}
	if len(r.Integrations) > 0 {
		integrations = string(r.Integrations)
	}
	var amount any
	if r.Amount != nil {
		amount = *r.Amount
	}
	rejected := 0
	if r.Rejected {
		rejected = 1
	}
	v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] = r.ID, r.ProjectID, r.Type, strPtr(r.UserID), strPtr(r.AnonymousID),
		string(r.Properties), ctxJSON, strPtr(r.MessageID)
	v[8], v[9], v[10], v[11], v[12], v[13] = r.KeyID, r.Status, strPtr(r.ErrorDetails), timePtr(r.ClientTimestamp),
		timePtr(r.SentAt), r.ReceivedAt
	v[14], v[15], v[16], v[17], v[18], v[19] = r.OccurredAt, timePtr(r.ProcessedAt), amount, strPtr(r.Currency),
		rejected, integrations
}

func (w *sqliteBulk) rows(ctx context.Context, table string, columns []string, n int, row func(i int, v []any)) error {
	return w.insert(ctx, table, columns, n, func(i int, v []any) {
		row(i, v)
		for j, x := range v {
			switch x := x.(type) {
			case projectKey:
				v[j] = string(x)
			case json.RawMessage:
				v[j] = string(x)
			case *int64:
				if x == nil {
					v[j] = nil
				} else {
					v[j] = *x
				}
			}
		}
	})
}

func (w *sqliteBulk) exec(ctx context.Context, query string) error {
	_, err := w.conn.ExecContext(ctx, query)
	return err
}

func (w *sqliteBulk) indexPlan(context.Context, string) ([]string, []string, error) {
	return nil, nil, nil
}

func (w *sqliteBulk) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return w.conn.RunInTx(ctx, nil, fn)
}
