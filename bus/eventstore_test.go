package bus_test

import (
	"errors"
	"testing"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
)

func TestAppendIsOptimisticallyConcurrent(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			e := newBusEnv(t, mode)
			ctx := e.ctx
			store, err := bus.NewEventStore(ctx, e.nc, e.names)
			if err != nil {
				t.Fatal(err)
			}
			id := domain.NewID()
			ev := func() domain.Event {
				e, err := domain.NewEvent(domain.OrganizationCreated, domain.Meta{AggregateType: domain.AggregateOrganization,
					AggregateID: id, OrganizationID: id}, domain.OrganizationCreatedData{Name: "x"})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			if err := store.Append(ctx, domain.AggregateOrganization, id, 0, ev()); err != nil {
				t.Fatal(err)
			}
			// A second writer that also saw version 0 loses.
			if err := store.Append(ctx, domain.AggregateOrganization, id, 0, ev()); !errors.Is(err, bus.ErrConcurrency) {
				t.Fatalf("stale append: %v, want ErrConcurrency", err)
			}
			history, version, err := store.Load(ctx, domain.AggregateOrganization, id)
			if err != nil || len(history) != 1 {
				t.Fatalf("load: %d events, %v", len(history), err)
			}
			if err := store.Append(ctx, domain.AggregateOrganization, id, version, ev(), ev()); err != nil {
				t.Fatalf("append at current version: %v", err)
			}
			history, _, err = store.Load(ctx, domain.AggregateOrganization, id)
			if err != nil || len(history) != 3 {
				t.Fatalf("load after append: %d events, %v", len(history), err)
			}
			// An empty aggregate is version 0 with no history.
			if h, v, err := store.Load(ctx, domain.AggregateOrganization, domain.NewID()); err != nil || v != 0 || len(h) != 0 {
				t.Fatalf("empty aggregate: %d events, version %d, %v", len(h), v, err)
			}
		})
	}
}
