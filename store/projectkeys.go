package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/readmodel"
)

// The hot tables (the events projection's) key a project by a small
// integer, which project_keys hands out, instead of its UUID, on both
// databases: the project is the first column of every key of every one of
// them, and the integer makes their rows and index entries shorter
// (bench/narrowings.go: 1.2-1.4x the rows a second on SQLite, 1.2-1.3x on
// PostgreSQL). Everything outside the read model speaks UUIDs; the
// functions below are the only translation.
//
// A key is only ever added, never changed or removed, and no replay
// rebuilds project_keys (a SQLite replay's shadow file copies it and gives
// back what it added, projections.Replay; a PostgreSQL shadow schema uses
// the live one), so a key read once stays right.

// ProjectKeySQL is the SQL for the key a hot table's project_id column
// holds for the project whose UUID is the placeholder arg ("?"). A project
// with no key matches no row.
func ProjectKeySQL(arg string) string {
	return "(SELECT key FROM project_keys WHERE project_id = " + arg + ")"
}

// ProjectKeysSQL is ProjectKeySQL for a list: the SQL after IN for the
// projects whose UUIDs are the list placeholder arg ("(?)").
func ProjectKeysSQL(arg string) string {
	return "(SELECT key FROM project_keys WHERE project_id IN " + arg + ")"
}

// ProjectKeys returns, for each project UUID in ids, the key the hot
// tables' project_id holds for it, in decimal, handing one out to a
// project that has none. Both databases take the decimal for the integer
// column (SQLite by its affinity, PostgreSQL as an untyped literal), and
// reading the column back into a string gives the same decimal, so the
// events projection's fold runs on these strings alone. It writes within
// idb: called in a transaction, a key it hands out lasts only if the
// transaction commits, so callers must not keep the answer beyond it.
func ProjectKeys(ctx context.Context, idb bun.IDB, ids []string) (map[string]string, error) {
	keys := make(map[string]string, len(ids))
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return keys, nil
	}
	read := func() error {
		var rows []readmodel.ProjectKey
		if err := idb.NewSelect().Model(&rows).Where("project_id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
			return fmt.Errorf("store: reading project keys: %w", err)
		}
		for _, r := range rows {
			keys[r.ProjectID] = strconv.FormatInt(r.Key, 10)
		}
		return nil
	}
	if err := read(); err != nil {
		return nil, err
	}
	if len(keys) == len(ids) {
		return keys, nil
	}
	for _, id := range ids {
		if _, ok := keys[id]; ok {
			continue
		}
		if _, err := idb.NewRaw("INSERT INTO project_keys (project_id) VALUES (?) ON CONFLICT (project_id) DO NOTHING", id).
			Exec(ctx); err != nil {
			return nil, fmt.Errorf("store: handing out a project key: %w", err)
		}
	}
	if err := read(); err != nil {
		return nil, err
	}
	if len(keys) != len(ids) {
		return nil, fmt.Errorf("store: %d of %d projects got no key", len(ids)-len(keys), len(ids))
	}
	return keys, nil
}
