package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/processing"
)

type outcomes struct{ processed, failed atomic.Int64 }

func (o *outcomes) EventOutcome(s string) {
	if s == "processed" {
		o.processed.Add(1)
	} else {
		o.failed.Add(1)
	}
}

// TestProcessorIsolatesPoison runs the processor over real JetStream: a
// passing event is processed, a rule failure fails the event with its
// reason, a rule whose service is down for a while is waited out (never
// quarantined), and an event whose rule keeps erroring is retried, then
// quarantined — kept whole, left pending — instead of blocking the others.
func TestProcessorIsolatesPoison(t *testing.T) {
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
	var attempts, flaky atomic.Int64
	m := &outcomes{}
	p, err := processing.New(processing.Config{Log: store, Subjects: names, Metrics: m, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	p.Register("poison", processing.RuleFunc(func(context.Context, *domain.Event, *domain.TrackedData) error {
		attempts.Add(1)
		return errors.New("this rule has a bug")
	}))
	p.Register("flaky", processing.RuleFunc(func(context.Context, *domain.Event, *domain.TrackedData) error {
		if flaky.Add(1) <= 4 {
			return fmt.Errorf("loyalty service: %w", processing.ErrUnavailable)
		}
		return nil
	}))
	p.Register("Bad", processing.RuleFunc(func(context.Context, *domain.Event, *domain.TrackedData) error {
		return &processing.Failure{Reason: "bad is never allowed"}
	}))

	logger := watermill.NopLogger{}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := bus.NewSubscriber(env.ConnectNATS(), names.TrackedStream(), names.ProcessorQueue(), 4, logger)
	if err != nil {
		t.Fatal(err)
	}
	q, err := bus.NewQuarantine(nc, names)
	if err != nil {
		t.Fatal(err)
	}
	stage := health.NewBoard(0).Stage(health.StageProcessor)
	iso, err := bus.NewIsolator(health.StageProcessor, stage, q, testenv.Logger(t), bus.WithMaxAttempts(3),
		bus.WithTransient(processing.Transient))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(router, sub, names.TrackedSubjects(), logger, iso); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- router.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-router.Running()

	project := domain.NewID()
	ids := map[string]string{}
	for _, name := range []string{"page_view", "bad", "poison", "flaky"} {
		id := domain.NewID()
		ids[name] = id
		e, _ := domain.NewEventWithID(id, domain.EventTracked, domain.Meta{AggregateType: domain.AggregateEvent,
			AggregateID: id, ProjectID: project}, domain.TrackedData{Event: name, UserID: "u", KeyID: domain.NewID(),
			KeyType: domain.KeySecret, ReceivedAt: time.Now()})
		if err := store.Publish(ctx, names.TrackedSubject(project), e); err != nil {
			t.Fatal(err)
		}
	}

	got := map[string]domain.OutcomeData{}
	types := map[string]string{}
	var held []bus.QuarantinedMessage
	deadline := time.Now().Add(30 * time.Second)
	for (len(got) < 3 || len(held) < 1) && time.Now().Before(deadline) {
		got, types = readOutcomes(t, js, names, project)
		if held, err = q.List(ctx, 10); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if types[ids["page_view"]] != domain.EventProcessed {
		t.Errorf("page_view outcome %q", types[ids["page_view"]])
	}
	if types[ids["bad"]] != domain.EventFailed || got[ids["bad"]].Reason != "bad is never allowed" {
		t.Errorf("bad outcome %q %+v", types[ids["bad"]], got[ids["bad"]])
	}
	if types[ids["flaky"]] != domain.EventProcessed || flaky.Load() != 5 {
		t.Errorf("flaky outcome %q after %d runs, want processed after 5", types[ids["flaky"]], flaky.Load())
	}
	if _, ok := types[ids["poison"]]; ok {
		t.Errorf("poison got outcome %q; a quarantined event stays pending", types[ids["poison"]])
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("poison rule ran %d times, want 3 (retried, then quarantined)", n)
	}
	if len(held) != 1 {
		t.Fatalf("%d quarantined, want 1", len(held))
	}
	var parked domain.Event
	if err := json.Unmarshal(held[0].Data, &parked); err != nil || parked.ID != ids["poison"] {
		t.Fatalf("quarantined %s (%v)", held[0].Data, err)
	}
	if h := held[0]; h.Stage != health.StageProcessor || h.Stream != names.TrackedStream() || h.Sequence == 0 ||
		h.Attempts != 3 || !strings.Contains(h.Error, "this rule has a bug") || h.Reprocessed {
		t.Errorf("quarantined record %+v", h)
	}
	if st := stage.Snapshot(); st.Quarantined != 1 || st.Failures < 3+4 {
		t.Errorf("stage %+v, want 1 quarantined and the failures counted", st)
	}
	if m.processed.Load() != 2 || m.failed.Load() != 1 {
		t.Fatalf("outcome metrics processed=%d failed=%d", m.processed.Load(), m.failed.Load())
	}
}

func readOutcomes(t *testing.T, js jetstream.JetStream, names bus.Names, project string) (map[string]domain.OutcomeData, map[string]string) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, names.TrackedStream())
	if err != nil {
		t.Fatal(err)
	}
	out, types := map[string]domain.OutcomeData{}, map[string]string{}
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(names.OutcomeSubject(project)))
		if err != nil {
			return out, types
		}
		var e domain.Event
		_ = json.Unmarshal(m.Data, &e)
		d, _ := domain.DecodeData[domain.OutcomeData](&e)
		out[d.EventID], types[d.EventID] = d, e.Type
		seq = m.Sequence + 1
	}
}

type nopLog struct{}

func (nopLog) Publish(context.Context, string, ...domain.Event) error { return nil }

type nopSubjects struct{}

func (nopSubjects) OutcomeSubject(p string) string { return "outcomes." + p }

// TestSettle: an event whose every rule is inline is settled at once
// (processed, or failed with the rule's reason); one with a rule that is
// not inline, or whose inline rule errs other than with a Failure, is left
// to the processor, untouched.
func TestSettle(t *testing.T) {
	p, err := processing.New(processing.Config{Log: nopLog{}, Subjects: nopSubjects{}, Metrics: &outcomes{},
		Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	p.Register("quest.completed", processing.RuleFunc(func(context.Context, *domain.Event, *domain.TrackedData) error { return nil }))
	p.RegisterInline("flaky", processing.RuleFunc(func(context.Context, *domain.Event, *domain.TrackedData) error {
		return errors.New("a bug")
	}))
	for _, c := range []struct {
		name, props     string
		settled         bool
		outcome, reason string
	}{
		{"click", `{}`, true, domain.OutcomeProcessed, ""},
		{"purchase", `{"orderId":"o","amount":1,"currency":"EUR"}`, true, domain.OutcomeProcessed, ""},
		{"purchase", `{"orderId":"o","amount":1,"currency":"XXX"}`, true, domain.OutcomeFailed, `unsupported currency "XXX"`},
		{"quest.completed", `{}`, false, "", ""},
		{"flaky", `{}`, false, "", ""},
	} {
		d := domain.TrackedData{Event: c.name, Properties: json.RawMessage(c.props)}
		e := domain.Event{ID: domain.NewID(), Type: domain.EventTracked, ProjectID: domain.NewID()}
		ok := p.Settle(context.Background(), &e, &d)
		if ok != c.settled || d.Outcome != c.outcome || d.Reason != c.reason {
			t.Errorf("%s %s: settled %v %q %q, want %v %q %q", c.name, c.props, ok, d.Outcome, d.Reason, c.settled,
				c.outcome, c.reason)
		}
	}
}
