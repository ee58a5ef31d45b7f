package projections

import (
	"slices"
	"testing"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/store"
)

// The array types insertEventsPG binds are the events table's column
// types, column for column: a migration that changes one must change
// eventColumnsPG too.
func TestEventColumnsPGAreTheTablesTypes(t *testing.T) {
	if !slices.Contains(testenv.Modes(), testenv.Distributed) {
		t.Skip("needs PostgreSQL (BOOST_TEST_DATABASE_URL)")
	}
	env := testenv.Start(t, testenv.Distributed)
	env.Migrate(t.Context())
	db := env.OpenDB(t.Context())
	if db.Dialect != store.Postgres {
		t.Fatalf("dialect %v, want PostgreSQL", db.Dialect)
	}
	if len(eventColumnsPG) != len(eventColumns) {
		t.Fatalf("%d types for %d columns", len(eventColumnsPG), len(eventColumns))
	}
	for i, c := range eventColumns {
		var typ string
		if err := db.NewRaw("SELECT udt_name FROM information_schema.columns WHERE table_schema = current_schema() "+
			"AND table_name = 'events' AND column_name = ?", c).Scan(t.Context(), &typ); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if typ != eventColumnsPG[i] {
			t.Errorf("events.%s is %s, eventColumnsPG says %s", c, typ, eventColumnsPG[i])
		}
	}
}
