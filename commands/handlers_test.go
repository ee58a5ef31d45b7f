package commands_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

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
				workers = append(workers, commands.NewHandlers(store, names, nil, testenv.Logger(t)))
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
	h := commands.NewHandlers(store, names, nil, testenv.Logger(t))
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

// TestTrackEventsAppendsEachEventOnce: a batch command appends each of
// its events under its own id — a trusted one from a publishable key as
// EventRejected, an identify as UserIdentified — and handling it again
// (a redelivery) appends nothing more.
func TestTrackEventsAppendsEachEventOnce(t *testing.T) {
	ctx := context.Background()
	env := testenv.Start(t, testenv.Embedded)
	names := bus.Names{Prefix: env.Config.NATSPrefix}
	js, err := jetstream.New(env.ConnectNATS())
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, names, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	store, err := bus.NewEventStore(ctx, env.ConnectNATS(), names)
	if err != nil {
		t.Fatal(err)
	}
	h := commands.NewHandlers(store, names, nil, testenv.Logger(t))
	project, key := domain.NewID(), domain.NewID()
	event := func(name string, kt domain.KeyType) commands.TrackEvent {
		return commands.TrackEvent{Header: commands.NewHeader("t"), EventID: domain.NewID(), ProjectID: project,
			OccurredAt: time.Now().UTC(), Event: domain.TrackedData{Event: name, UserID: "u", ReceivedAt: time.Now().UTC(),
				KeyID: key, KeyType: kt, Properties: json.RawMessage(`{"orderId":"o","amount":1,"currency":"EUR"}`)}}
	}
	cmd := &commands.TrackEvents{Header: commands.NewHeader("t"), Events: []commands.TrackEvent{
		event("click", domain.KeyPublishable), event("purchase", domain.KeyPublishable), event("$identify", domain.KeySecret)}}
	for range 2 {
		if err := h.TrackEvents(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, names.TrackedStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("%d messages in the tracked stream, want 3", info.State.Msgs)
	}
	want := []string{domain.EventTracked, domain.EventRejected, domain.UserIdentified}
	for i := range 3 {
		m, err := s.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		var e domain.Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.ID != cmd.Events[i].EventID || e.Type != want[i] {
			t.Errorf("message %d: %s %s, want %s %s", i+1, e.ID, e.Type, cmd.Events[i].EventID, want[i])
		}
	}
}
