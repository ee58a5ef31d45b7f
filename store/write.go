package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Insert runs q, a multi-row INSERT, and scans what it returns into dest
// (with no dest it only runs it).
//
// On SQLite it runs as INSERT OR FAIL. A statement that writes several
// rows and may ABORT on a constraint (every NOT NULL column does, by
// default) makes SQLite copy each page it touches into a statement
// journal first, so that the abort can undo the statement alone. Inside
// the projections' large transactions that copy was a third of the
// events projection's CPU (docs/benchmarks.md). FAIL stops the statement
// with the same error without that undo log; the caller's transaction is
// rolled back on any error anyway, so nothing half-written survives.
//
// An upsert's DO UPDATE part still aborts on NOT NULL columns it sets
// (SQLite runs it as an UPDATE OR ABORT whatever the INSERT says), so
// Insert only pays for plain inserts and DO NOTHING.
func Insert(ctx context.Context, q *bun.InsertQuery, dest ...any) error {
	if q.Dialect().Name() != dialect.SQLite {
		if len(dest) == 0 {
			_, err := q.Exec(ctx)
			return err
		}
		return q.Scan(ctx, dest...)
	}
	b, err := q.AppendQuery(q.DB().QueryGen(), nil)
	if err != nil {
		return err
	}
	rest, ok := strings.CutPrefix(string(b), "INSERT INTO ")
	if !ok {
		return fmt.Errorf("store: not a plain INSERT: %.40q", b)
	}
	// With no arguments the raw query is run as written: its values are
	// already inlined and quoted by the InsertQuery.
	raw := q.NewRaw("INSERT OR FAIL INTO " + rest)
	if len(dest) == 0 {
		_, err := raw.Exec(ctx)
		return err
	}
	return raw.Scan(ctx, dest...)
}

// UpdateRows overwrites the columns set of table's rows whose columns key
// hold the given values, in one statement: each of rows is its key values
// then its set values, in that order. It is how the SQLite projections
// write rows they have read and folded: an upsert's DO UPDATE would
// journal every page it touches (see Insert), UPDATE OR FAIL does not.
// SQLite only; PostgreSQL, which has no statement journal, upserts.
func UpdateRows(ctx context.Context, idb bun.IDB, table string, key, set []string, rows [][]any) error {
	if idb.Dialect().Name() != dialect.SQLite {
		return fmt.Errorf("store: UpdateRows is for SQLite, not %s", idb.Dialect().Name())
	}
	if len(rows) == 0 {
		return nil
	}
	width := len(key) + len(set)
	var q strings.Builder
	q.WriteString("UPDATE OR FAIL " + table + " SET ")
	for i, c := range set {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "%s = v.column%d", c, len(key)+i+1)
	}
	q.WriteString(" FROM (VALUES ")
	tuple := Placeholders(width)
	args := make([]any, 0, width*len(rows))
	for i, r := range rows {
		if len(r) != width {
			return fmt.Errorf("store: updating %s: row %d has %d values, want %d", table, i, len(r), width)
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(tuple)
		args = append(args, r...)
	}
	q.WriteString(") AS v WHERE ")
	for i, c := range key {
		if i > 0 {
			q.WriteString(" AND ")
		}
		fmt.Fprintf(&q, "%s.%s = v.column%d", table, c, i+1)
	}
	res, err := idb.NewRaw(q.String(), args...).Exec(ctx)
	if err != nil {
		return fmt.Errorf("updating %s: %w", table, err)
	}
	// Every row was read in this transaction: one that matched nothing is
	// a bug in the caller's fold, not something to skip.
	if n, err := res.RowsAffected(); err == nil && n != int64(len(rows)) {
		return fmt.Errorf("updating %s: %d of %d rows matched", table, n, len(rows))
	}
	return nil
}

// InsertRows inserts rows into table's columns cols in one INSERT OR FAIL
// (see Insert), skipping those that conflict with a row stored already
// (ON CONFLICT DO NOTHING). It is the raw counterpart of Insert, for rows
// that are not bun models. SQLite only.
func InsertRows(ctx context.Context, idb bun.IDB, table string, cols []string, rows [][]any) error {
	if idb.Dialect().Name() != dialect.SQLite {
		return fmt.Errorf("store: InsertRows is for SQLite, not %s", idb.Dialect().Name())
	}
	if len(rows) == 0 {
		return nil
	}
	tuple := Placeholders(len(cols))
	args := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if len(r) != len(cols) {
			return fmt.Errorf("store: inserting into %s: row %d has %d values, want %d", table, i, len(r), len(cols))
		}
		args = append(args, r...)
	}
	q := "INSERT OR FAIL INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(tuple+", ", len(rows)), ", ") + " ON CONFLICT DO NOTHING"
	if _, err := idb.NewRaw(q, args...).Exec(ctx); err != nil {
		return fmt.Errorf("inserting into %s: %w", table, err)
	}
	return nil
}

// Placeholders is one row's "(?, ?, …)" of n values.
func Placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}
