package projections_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/store"
)

// A SQLite replay's shadow copies the live projects' keys, but a project
// keyed on both sides after the copy gets different keys: the swap must
// give the shadow's rows the live key, or the project's rows would read
// as another's. Both the replay and Apply write integers.
func TestReplayReconcilesProjectKeys(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	live := env.OpenDB(t.Context())
	if live.Dialect != store.SQLite {
		t.Skip("only SQLite keys projects by an integer")
	}
	project := domain.NewID()
	log := history(t, project)
	writeLog(t, env, "keys", 2, log)

	// While the shadow is built (the shadow has keyed project by then),
	// the live tables key another project first.
	other := domain.NewID()
	hook := writerFunc(func(p []byte) {
		if strings.Contains(string(p), "events built") {
			if _, err := store.ProjectKeys(t.Context(), live.DB, []string{other}); err != nil {
				t.Error(err)
			}
		}
	})
	rp := &projections.Replay{DB: live, Brokers: env.Kafka.Addrs(), Projection: projections.NewEvents("keys.events"),
		Log: testenv.Logger(t), Progress: hook, UntilEnd: true}
	if err := rp.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, err := store.ProjectKeys(t.Context(), live.DB, []string{project, other})
	if err != nil {
		t.Fatal(err)
	}
	if keys[other] != "1" || keys[project] != "2" {
		t.Fatalf("keys = %v: the test did not make them differ", keys)
	}

	// The same log applied where the project is keyed 1 builds the same
	// tables, but for the key.
	want := testenv.Start(t, testenv.Embedded)
	want.Migrate(t.Context())
	applied := want.OpenDB(t.Context())
	apply(t, applied, projections.NewEvents("events"), [][]domain.Event{log})
	got, exp := dump(t, live), dump(t, applied)
	for _, tbl := range readTables {
		if tbl == "orphan_outcomes" {
			continue
		}
		// Nothing checks the column's type but this: a UUID written by
		// mistake would be stored as text and match no query.
		for _, db := range []*store.DB{live, applied} {
			var text int
			if err := db.NewRaw("SELECT count(*) FROM "+tbl+" WHERE typeof(project_id) <> 'integer'").Scan(t.Context(), &text); err != nil || text != 0 {
				t.Fatalf("%s: %d rows not keyed by an integer (%v)", tbl, text, err)
			}
		}
		if len(exp[tbl]) == 0 {
			t.Fatalf("%s is empty: the comparison proves nothing", tbl)
		}
		for _, r := range got[tbl] {
			if fmt.Sprint(r["project_id"]) != keys[project] {
				t.Fatalf("%s row keyed %v, want %s", tbl, r["project_id"], keys[project])
			}
			r["project_id"] = exp[tbl][0]["project_id"]
		}
		if !reflect.DeepEqual(got[tbl], exp[tbl]) {
			t.Errorf("%s differs:\napply:  %v\nreplay: %v", tbl, exp[tbl], got[tbl])
		}
	}
}

// writerFunc is an io.Writer calling f with each write.
type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}
