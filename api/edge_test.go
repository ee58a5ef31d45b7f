package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/api"
	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/app"
	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/processing"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/store"
)

// edge is the ingestion and management edge with everything behind it
// real except the brokers' hops: a request is decoded and validated by the
// API, its command goes through the Watermill JSON marshaler to the real
// command handler, which appends to a real (embedded) JetStream; what it
// appended is read back and applied by every projection, and the
// processor's rules run on it, on SQLite and — when
// BOOST_TEST_DATABASE_URL is set — on PostgreSQL. The invariant the fuzz
// targets hold it to is the one the API promises: a request is answered
// with a 4xx JSON error, or whatever was accepted is applied everywhere.
type edge struct {
	t       testing.TB
	servers []*api.Server // one per database, reading it
	dbs     []*store.DB
	events  jetstream.Stream // aggregates' events
	tracked jetstream.Stream // tracked events and outcomes
	names   bus.Names
	h       *commands.Handlers
	proc    *processing.Processor
	ps      []projections.Projection

	adminToken, pk, sk, project, org string

	mu      sync.Mutex
	applyTo error  // failures to apply, for the current request
	trusted string // a trusted event accepted from a publishable key
}

// take returns and clears what the current request left.
func (e *edge) take() (applyErr error, trusted string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	applyErr, trusted, e.applyTo, e.trusted = e.applyTo, e.trusted, nil, ""
	return applyErr, trusted
}

// startEdge starts an edge for one fuzz target (its cleanup runs when the
// target ends): fuzzing calls the target thousands of times over the same
// infrastructure.
func startEdge(t testing.TB) *edge {
	ctx := context.Background()
	e := &edge{t: t, adminToken: "edge-admin-" + testenv.RandomSuffix()}
	for _, mode := range testenv.Modes() {
		env := testenv.Start(t, mode)
		env.Migrate(ctx)
		e.dbs = append(e.dbs, env.OpenDB(ctx))
		if mode == testenv.Embedded {
			e.names = bus.Names{Prefix: env.Config.NATSPrefix}
			nc := env.ConnectNATS()
			js, _ := jetstream.New(nc)
			if err := bus.EnsureStreams(ctx, js, e.names, bus.StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			es, err := bus.NewEventStore(ctx, nc, e.names)
			if err != nil {
				t.Fatal(err)
			}
			if e.proc, err = processing.New(processing.Config{Log: es, Subjects: e.names, Metrics: nopMetrics{},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
				t.Fatal(err)
			}
			e.h = commands.NewHandlers(es, e.names, e.proc, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if e.events, err = js.Stream(ctx, e.names.EventStream()); err != nil {
				t.Fatal(err)
			}
			if e.tracked, err = js.Stream(ctx, e.names.TrackedStream()); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.ps = []projections.Projection{projections.NewTenancy("tenancy", nil), projections.NewEvents("events")}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, db := range e.dbs {
		q := queries.New(db)
		a, err := app.New(app.Config{Commands: e, Read: q, ConsistencyTimeout: 2 * time.Second, Log: quiet, Metrics: metrics.New(),
			Auth: apikeys.New(keySource{q}, apikeys.NewLocalCache(time.Minute, 1000), quiet)})
		if err != nil {
			t.Fatal(err)
		}
		e.servers = append(e.servers, api.New(api.Config{Version: "edge", App: a, AdminTokenSHA256: config.HashToken(e.adminToken),
			Metrics: metrics.New(), Log: quiet}))
	}
	// A tenant, made through the same path.
	org := e.must("POST", "/v1/organizations", e.adminToken, `{"name":"Edge"}`)
	e.org = str(org, "id")
	e.project = str(e.must("POST", "/v1/organizations/"+e.org+"/projects", e.adminToken, `{"name":"Shop"}`), "id")
	e.pk = str(e.must("POST", "/v1/projects/"+e.project+"/api-keys", e.adminToken, `{"name":"web","type":"publishable"}`), "key")
	e.sk = str(e.must("POST", "/v1/projects/"+e.project+"/api-keys", e.adminToken, `{"name":"srv","type":"secret"}`), "key")
	return e
}

func (e *edge) must(method, path, token, body string) map[string]any {
	status, b := e.do(0, method, path, token, body, "")
	if status != http.StatusCreated {
		e.t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// do sends a request to the server over database i.
func (e *edge) do(i int, method, path, token, body, encoding string) (int, []byte) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	e.servers[i].ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// Send implements api.CommandSender: the command crosses the wire format,
// is handled, and what it appended is applied to every database.
func (e *edge) Send(ctx context.Context, cmd commands.Command) error {
	return e.SendBatch(ctx, []commands.Command{cmd})
}

// SendBatch implements api.CommandSender.
func (e *edge) SendBatch(ctx context.Context, cmds []commands.Command) error {
	for _, cmd := range cmds {
		if err := cmd.Validate(); err != nil {
			return err // as commands.Bus does
		}
		var tracked []commands.TrackEvent
		switch c := cmd.(type) {
		case *commands.TrackEvent:
			tracked = []commands.TrackEvent{*c}
		case *commands.TrackEvents:
			tracked = c.Events
		}
		for _, c := range tracked {
			if c.Event.KeyType == domain.KeyPublishable && domain.IsTrusted(c.Event.Event) {
				e.mu.Lock()
				e.trusted = c.Event.Event
				e.mu.Unlock()
			}
		}
		if err := e.handle(ctx, cmd); err != nil {
			e.mu.Lock()
			e.applyTo = errors.Join(e.applyTo, err)
			e.mu.Unlock()
		}
	}
	return nil
}

var marshaler = cqrs.JSONMarshaler{}

// handle sends cmd through the command's wire format to its handler and
// applies what the handler appended.
func (e *edge) handle(ctx context.Context, cmd commands.Command) error {
	msg, err := marshaler.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("marshalling %T: %w", cmd, err)
	}
	decoded := func(v any) error { return marshaler.Unmarshal(msg, v) }
	before, err := e.tracked.Info(ctx)
	if err != nil {
		return err
	}
	var subject string
	stream := e.events
	switch c := cmd.(type) {
	case *commands.TrackEvents:
		var got commands.TrackEvents
		if err = decoded(&got); err == nil {
			err = e.h.TrackEvents(ctx, &got)
		}
		stream = e.tracked
	case *commands.TrackEvent:
		var got commands.TrackEvent
		if err = decoded(&got); err == nil {
			err = e.h.TrackEvent(ctx, &got)
		}
		stream = e.tracked
	case *commands.IdentifyUser:
		var got commands.IdentifyUser
		if err = decoded(&got); err == nil {
			err = e.h.IdentifyUser(ctx, &got)
		}
		stream = e.tracked
	case *commands.CreateOrganization:
		var got commands.CreateOrganization
		if err = decoded(&got); err == nil {
			err = e.h.CreateOrganization(ctx, &got)
		}
		subject = e.names.AggregateSubject(domain.AggregateOrganization, c.OrganizationID)
	case *commands.CreateProject:
		var got commands.CreateProject
		if err = decoded(&got); err == nil {
			err = e.h.CreateProject(ctx, &got)
		}
		subject = e.names.AggregateSubject(domain.AggregateProject, c.ProjectID)
	case *commands.CreateKey:
		var got commands.CreateKey
		if err = decoded(&got); err == nil {
			err = e.h.CreateKey(ctx, &got)
		}
		subject = e.names.AggregateSubject(domain.AggregateProject, c.ProjectID)
	default:
		return fmt.Errorf("the edge does not handle %T", cmd)
	}
	if err != nil {
		return fmt.Errorf("handling %T: %w", cmd, err)
	}
	var evs []domain.Event
	if stream == e.tracked {
		evs, err = e.appendedSince(ctx, before.State.LastSeq)
	} else {
		var ev domain.Event
		ev, err = e.last(ctx, stream, subject)
		evs = []domain.Event{ev}
	}
	if err != nil {
		return err
	}
	return e.apply(ctx, evs)
}

// apply applies what a command appended with every projection on every
// database, after the processor's rules ran on each tracked event that
// was not settled as it was appended.
func (e *edge) apply(ctx context.Context, evs []domain.Event) error {
	batch := append([]domain.Event{}, evs...)
	for _, ev := range evs {
		if ev.Type != domain.EventTracked {
			continue
		}
		if d, err := domain.DecodeData[domain.TrackedData](&ev); err == nil && d.Outcome != "" {
			continue // settled as it was appended
		}
		// The processor's rules, and the outcome they append.
		if err := e.proc.Reprocess(ctx, mustJSON(ev)); err != nil {
			return fmt.Errorf("processing %s: %w", ev.ID, err)
		}
		out, err := e.last(ctx, e.tracked, e.names.OutcomeSubject(ev.ProjectID))
		if err != nil {
			return err
		}
		batch = append(batch, out)
	}
	for _, db := range e.dbs {
		for _, p := range e.ps {
			var mine []domain.Event
			for _, ev := range batch {
				if (bus.Topics{Tenancy: "tenancy", Events: "events"}).For(&ev) == p.Topics()[0] {
					mine = append(mine, ev)
				}
			}
			if len(mine) == 0 {
				continue
			}
			if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				return p.Apply(ctx, tx, db, mine)
			}); err != nil {
				return fmt.Errorf("projection %s on %s cannot apply %s %s: %w", p.Name(), db.Dialect, mine[0].Type, mine[0].ID, err)
			}
		}
	}
	return nil
}

// appendedSince reads what was appended to the tracked stream after seq
// (the edge handles one command at a time), in order.
func (e *edge) appendedSince(ctx context.Context, seq uint64) ([]domain.Event, error) {
	info, err := e.tracked.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []domain.Event
	for s := seq + 1; s <= info.State.LastSeq; s++ {
		m, err := e.tracked.GetMsg(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("reading the tracked stream at %d: %w", s, err)
		}
		var ev domain.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", m.Subject, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// last reads the last message on subject as the bridge would hand it to
// Kafka, and decodes it as a projection does.
func (e *edge) last(ctx context.Context, stream jetstream.Stream, subject string) (domain.Event, error) {
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return domain.Event{}, fmt.Errorf("reading what was appended to %s: %w", subject, err)
	}
	var ev domain.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return domain.Event{}, fmt.Errorf("decoding what was appended to %s: %w", subject, err)
	}
	return ev, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type keySource struct{ q *queries.Queries }

func (s keySource) KeyByHash(ctx context.Context, hash string) (*apikeys.Key, error) {
	k, err := s.q.APIKeyByHash(ctx, hash)
	if errors.Is(err, queries.ErrNotFound) {
		return nil, apikeys.ErrUnknown
	}
	if err != nil {
		return nil, err
	}
	return &apikeys.Key{ID: k.ID, ProjectID: k.ProjectID, OrganizationID: k.OrganizationID,
		Type: domain.KeyType(k.Type), Revoked: k.RevokedAt != nil}, nil
}

type nopMetrics struct{}

func (nopMetrics) CommandHandled(string, string) {}
func (nopMetrics) EventOutcome(string)           {}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
