package testenv

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/gamify/boost/store"
)

// DumpTables reads whole tables for comparing read models. Rows are
// sorted by all their values: no column list is a total order on every
// table (some are keyed by four columns).
func DumpTables(t testing.TB, db *store.DB, tables ...string) map[string][]map[string]any {
	t.Helper()
	out := make(map[string][]map[string]any, len(tables))
	for _, tbl := range tables {
		var rows []map[string]any
		if err := db.NewSelect().Table(tbl).Scan(context.Background(), &rows); err != nil {
			t.Fatalf("dumping %s: %v", tbl, err)
		}
		keys := make([]string, len(rows))
		for i, r := range rows {
			keys[i] = fmt.Sprint(r)
		}
		sort.Sort(byKey{keys, rows})
		out[tbl] = rows
	}
	return out
}

type byKey struct {
	keys []string
	rows []map[string]any
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.rows[i], b.rows[j] = b.rows[j], b.rows[i]
}
