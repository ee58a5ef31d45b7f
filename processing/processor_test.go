package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
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

// TestProcessorRetriesThenDeadLetters runs the processor over real
// JetStream: a passing event is processed, a rule failure fails the event
// with its reason, and an event whose rule keeps erroring is retried with
// backoff, then dead-lettered and marked failed instead of blocking.
func TestProcessorRetriesThenDeadLetters(t *testing.T) {
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
	var attempts atomic.Int64
	m := &outcomes{}
	p := processing.New(store, names, m, testenv.Logger(t))
	p.MaxAttempts = 3
	p.Register("poison", processing.RuleFunc(func(context.Context, *domain.Event, *domain.TrackedData) error {
		attempts.Add(1)
		return errors.New("downstream unavailable")
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
	if err := p.Attach(router, sub, names.TrackedSubjects(), logger); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- router.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-router.Running()

	project := domain.NewID()
	ids := map[string]string{}
	for _, name := range []string{"page_view", "bad", "poison"} {
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
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		got, types = readOutcomes(t, js, names, project)
		time.Sleep(50 * time.Millisecond)
	}
	if types[ids["page_view"]] != domain.EventProcessed {
		t.Errorf("page_view outcome %q", types[ids["page_view"]])
	}
	if types[ids["bad"]] != domain.EventFailed || got[ids["bad"]].Reason != "bad is never allowed" {
		t.Errorf("bad outcome %q %+v", types[ids["bad"]], got[ids["bad"]])
	}
	if types[ids["poison"]] != domain.EventFailed || got[ids["poison"]].Attempts != 3 {
		t.Errorf("poison outcome %q %+v", types[ids["poison"]], got[ids["poison"]])
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("poison rule ran %d times, want 3 (retried, then given up)", n)
	}
	dl, err := js.Stream(ctx, names.DeadLetterStream())
	if err != nil {
		t.Fatal(err)
	}
	info, _ := dl.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("%d dead letters, want 1", info.State.Msgs)
	}
	msg, err := dl.GetLastMsgForSubject(ctx, names.DeadLetterSubject(project))
	if err != nil {
		t.Fatal(err)
	}
	var parked domain.Event
	if err := json.Unmarshal(msg.Data, &parked); err != nil || parked.AggregateID != ids["poison"] {
		t.Fatalf("dead letter %s (%v)", msg.Data, err)
	}
	if m.processed.Load() != 1 || m.failed.Load() != 2 {
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
