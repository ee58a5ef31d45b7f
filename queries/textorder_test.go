package queries_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/queries"
)

// TestTextKeysCompareByteWise checks that answers ordered or filtered by a
// text key follow byte order on both databases, as SQLite compares text:
// the users' prefix search and their order on equal last-seen times, and
// top events' order on equal counts. PostgreSQL test databases sort text
// in an English ICU locale, where "B" follows "a", "_" precedes letters
// and a prefix range takes in other cases; the text keys' byte collation
// (migration 000800) is what makes the answers agree.
func TestTextKeysCompareByteWise(t *testing.T) {
	ids := []string{"User-5", "a-1", "B-2", "user-1", "user_1", "user-10", "user-2", "usér-3", "user", "user-", "_u", "USER-9"}
	types := []string{"b_type", "B_type", "a_type", "_type", "Z_type", "é_type"}
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			env := testenv.Start(t, mode)
			env.Migrate(t.Context())
			db := env.OpenDB(t.Context())
			project, key := domain.NewID(), domain.NewID()
			at := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
			var log []domain.Event
			for i, id := range ids {
				// Every user last seen at the same time; one event of each
				// type (equal counts).
				d := domain.TrackedData{Event: types[i%len(types)], UserID: id, Properties: json.RawMessage(`{}`),
					ReceivedAt: at, KeyID: key, KeyType: domain.KeySecret}
				if i >= len(types) {
					d.Event = "page_view"
				}
				eid := domain.EventIDFor(project, fmt.Sprint("t", i))
				e, err := domain.NewEventWithID(eid, domain.EventTracked, domain.Meta{AggregateType: domain.AggregateEvent,
					AggregateID: eid, ProjectID: project, OccurredAt: at}, d)
				if err != nil {
					t.Fatal(err)
				}
				log = append(log, e)
			}
			if err := db.RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				return projections.NewEvents("events").Apply(ctx, tx, db, log)
			}); err != nil {
				t.Fatal(err)
			}

			q := queries.New(db)
			for _, prefix := range []string{"user-", "user", "U", "_", "usé"} {
				var want []string
				for _, id := range ids {
					if strings.HasPrefix(id, prefix) {
						want = append(want, id)
					}
				}
				slices.SortFunc(want, func(a, b string) int { return strings.Compare(b, a) }) // external id descending
				var got []string
				if err := q.InProject(t.Context(), project, func(ctx context.Context, q *queries.Queries) error {
					users, _, err := q.EndUsers(ctx, project, queries.UserFilter{Prefix: prefix}, queries.Page{Limit: 100})
					for _, u := range users {
						got = append(got, u.ExternalID)
					}
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("users with prefix %q: %q, want %q", prefix, got, want)
				}
			}

			want := slices.Clone(types)
			slices.SortFunc(want, strings.Compare)
			want = append([]string{"page_view"}, want...) // the most frequent
			var got []string
			if err := q.InProject(t.Context(), project, func(ctx context.Context, q *queries.Queries) error {
				// A range with whole days (the roll-up) and one within a day
				// (the events).
				for _, r := range [][2]time.Time{{at.Add(-48 * time.Hour), at.Add(48 * time.Hour)}, {at.Add(-time.Hour), at.Add(time.Hour)}} {
					top, err := q.TopEvents(ctx, project, r[0], r[1], 20)
					if err != nil {
						return err
					}
					names := make([]string, len(top))
					for i, e := range top {
						names[i] = e.Event
					}
					got = append(got, cmp.Or(strings.Join(names, " "), "none"))
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i, g := range got {
				if g != strings.Join(want, " ") {
					t.Errorf("top events (range %d): %s, want %s", i, g, strings.Join(want, " "))
				}
			}
		})
	}
}
