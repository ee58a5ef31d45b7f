package commands_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
)

type countMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countMetrics) CommandHandled(command, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[command+"/"+outcome]++
}

// TestConcurrentRevokesAppendOnce races two workers, each with its own
// connection and history cache, revoking the same key many times: the
// aggregate's optimistic concurrency lets exactly one ApiKeyRevoked in.
func TestConcurrentRevokesAppendOnce(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			env := testenv.Start(t, mode)
			names := bus.Names{Prefix: env.Config.NATSPrefix}
			nc := env.ConnectNATS()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if err := bus.EnsureStreams(ctx, js, names, bus.StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			metrics := &countMetrics{}
			var workers []*commands.Handlers
			for range 2 {
				store, err := bus.NewEventStore(ctx, env.ConnectNATS(), names)
				if err != nil {
					t.Fatal(err)
				}
				workers = append(workers, commands.NewHandlers(store, names, testenv.Logger(t)))
			}
			orgID, projID, keyID := domain.NewID(), domain.NewID(), domain.NewID()
			key, _ := domain.GenerateKey(domain.KeySecret)
			h := workers[0]
			must(t, h.CreateOrganization(ctx, &commands.CreateOrganization{Header: commands.NewHeader("t"), OrganizationID: orgID, Name: "o"}))
			must(t, h.CreateProject(ctx, &commands.CreateProject{Header: commands.NewHeader("t"), ProjectID: projID, OrganizationID: orgID, Name: "p"}))
			must(t, h.CreateKey(ctx, &commands.CreateKey{Header: commands.NewHeader("t"), ProjectID: projID, KeyID: keyID, Name: "k",
				Type: domain.KeySecret, Hash: key.Hash, Prefix: key.Prefix}))

			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := &commands.RevokeKey{Header: commands.NewHeader("t"), ProjectID: projID, KeyID: keyID}
					rctx, out := commands.WithOutcome(ctx)
					if err := workers[i%2].RevokeKey(rctx, cmd); err != nil {
						t.Errorf("revoke: %v", err)
					}
					metrics.CommandHandled("RevokeKey", out.String())
				}()
			}
			wg.Wait()

			store, _ := bus.NewEventStore(ctx, nc, names)
			history, _, err := store.Load(ctx, domain.AggregateProject, projID)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, e := range history {
				counts[e.Type]++
			}
			if counts[domain.APIKeyRevoked] != 1 || counts[domain.APIKeyCreated] != 1 || counts[domain.ProjectCreated] != 1 {
				t.Fatalf("project history %v, want one each of ProjectCreated, ApiKeyCreated, ApiKeyRevoked", counts)
			}
			if metrics.n["RevokeKey/applied"] != 1 || metrics.n["RevokeKey/noop"] != 19 {
				t.Fatalf("outcomes %v, want 1 applied and 19 noop", metrics.n)
			}
		})
	}
}

func TestHandlersRejectAndStayIdempotent(t *testing.T) {
	ctx := context.Background()
	env := testenv.Start(t, testenv.Embedded)
	names := bus.Names{Prefix: env.Config.NATSPrefix}
	nc := env.ConnectNATS()
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(ctx, js, names, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	store, err := bus.NewEventStore(ctx, nc, names)
	if err != nil {
		t.Fatal(err)
	}
	m := &countMetrics{}
	h := commands.NewHandlers(store, names, testenv.Logger(t))
	counted := func(name string, run func(ctx context.Context) error) error {
		ctx, out := commands.WithOutcome(ctx)
		err := run(ctx)
		m.CommandHandled(name, out.String())
		return err
	}
	orgID, projID := domain.NewID(), domain.NewID()
	key, _ := domain.GenerateKey(domain.KeyPublishable)

	// A project in a missing organization, a key in a missing project and a
	// revoke of a missing key are rejected: acked, counted, nothing appended.
	must(t, counted("CreateProject", func(ctx context.Context) error {
		return h.CreateProject(ctx, &commands.CreateProject{Header: commands.NewHeader(""), ProjectID: projID, OrganizationID: orgID, Name: "p"})
	}))
	must(t, counted("CreateKey", func(ctx context.Context) error {
		return h.CreateKey(ctx, &commands.CreateKey{Header: commands.NewHeader(""), ProjectID: projID, KeyID: domain.NewID(), Name: "k",
			Type: domain.KeyPublishable, Hash: key.Hash, Prefix: key.Prefix})
	}))
	must(t, counted("RevokeKey", func(ctx context.Context) error {
		return h.RevokeKey(ctx, &commands.RevokeKey{Header: commands.NewHeader(""), ProjectID: projID, KeyID: domain.NewID()})
	}))
	// A command carrying what looks like a plaintext key as its prefix is refused.
	must(t, counted("CreateKey", func(ctx context.Context) error {
		return h.CreateKey(ctx, &commands.CreateKey{Header: commands.NewHeader(""), ProjectID: projID, KeyID: domain.NewID(), Name: "k",
			Type: domain.KeyPublishable, Hash: key.Hash, Prefix: key.Plaintext})
	}))
	if m.n["CreateProject/rejected"] != 1 || m.n["CreateKey/rejected"] != 2 || m.n["RevokeKey/rejected"] != 1 {
		t.Fatalf("outcomes %v", m.n)
	}
	if h, _, _ := store.Load(ctx, domain.AggregateProject, projID); len(h) != 0 {
		t.Fatalf("rejected commands appended %d events", len(h))
	}

	// The same command delivered twice appends once.
	create := &commands.CreateOrganization{Header: commands.NewHeader(""), OrganizationID: orgID, Name: "o"}
	must(t, h.CreateOrganization(ctx, create))
	must(t, h.CreateOrganization(ctx, create))
	history, version, err := store.Load(ctx, domain.AggregateOrganization, orgID)
	if err != nil || len(history) != 1 || version == 0 {
		t.Fatalf("organization history %d events at version %d (%v), want 1", len(history), version, err)
	}
	var data domain.OrganizationCreatedData
	if err := json.Unmarshal(history[0].Data, &data); err != nil || data.Name != "o" {
		t.Fatalf("payload %s", history[0].Data)
	}
	e := history[0]
	if e.CausationID != create.CommandID || e.Version != domain.SchemaVersion || e.AggregateID != orgID || e.OccurredAt.IsZero() {
		t.Fatalf("envelope %+v", e)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
