package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
)

// LiveEvent is one step of an event through the pipeline as the live tail
// shows it: first pending (tracked), then processed or failed (its outcome).
type LiveEvent struct {
	ID          string     `json:"id"`
	Event       string     `json:"event,omitempty"`
	UserID      string     `json:"userId,omitempty"`
	AnonymousID string     `json:"anonymousId,omitempty"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	OccurredAt  *time.Time `json:"occurredAt,omitempty"`
	ReceivedAt  *time.Time `json:"receivedAt,omitempty"`
	// Outcome marks a status change of an event sent earlier.
	Outcome bool `json:"outcome,omitempty"`
}

// Feed streams a project's events as the pipeline appends them. The
// channel is closed when ctx ends.
type Feed interface {
	Subscribe(ctx context.Context, projectID string) (<-chan LiveEvent, error)
}

// NATSFeed reads the tracked and outcome subjects the write side appends
// to, with plain NATS subscriptions: a dashboard watching costs the
// pipeline nothing and never consumes from its durable consumers.
type NATSFeed struct {
	nc    *nats.Conn
	names bus.Names
}

// NewNATSFeed returns a feed over nc.
func NewNATSFeed(nc *nats.Conn, names bus.Names) *NATSFeed { return &NATSFeed{nc: nc, names: names} }

// liveBuffer bounds what a slow browser may fall behind by; beyond it the
// tail skips events rather than slow anything else down.
const liveBuffer = 1024

// Subscribe implements Feed.
func (f *NATSFeed) Subscribe(ctx context.Context, projectID string) (<-chan LiveEvent, error) {
	ch := make(chan LiveEvent, liveBuffer)
	var mu sync.Mutex
	closed := false
	deliver := func(m *nats.Msg) {
		ev, ok := liveEventOf(m.Data)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select {
		case ch <- ev:
		default: // the browser is behind: drop rather than block NATS
		}
	}
	var subs []*nats.Subscription
	for _, subject := range []string{f.names.TrackedSubject(projectID), f.names.SettledSubject(projectID), f.names.OutcomeSubject(projectID)} {
		sub, err := f.nc.Subscribe(subject, deliver)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, fmt.Errorf("subscribing to %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := f.nc.FlushWithContext(flushCtx); err != nil {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		return nil, fmt.Errorf("subscribing to live events: %w", err)
	}
	go func() {
		<-ctx.Done()
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		mu.Lock()
		closed = true
		close(ch)
		mu.Unlock()
	}()
	return ch, nil
}

// liveEventOf decodes an event envelope from the tracked or outcome
// subjects; anything else is skipped.
func liveEventOf(data []byte) (LiveEvent, bool) {
	var e domain.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return LiveEvent{}, false
	}
	switch e.Type {
	case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
		d, err := domain.DecodeData[domain.TrackedData](&e)
		if err != nil {
			return LiveEvent{}, false
		}
		occurred, received := e.OccurredAt, d.ReceivedAt
		ev := LiveEvent{ID: e.ID, Event: d.Event, UserID: d.UserID, AnonymousID: d.AnonymousID,
			Status: readmodel.StatusPending, OccurredAt: &occurred, ReceivedAt: &received}
		switch e.Type {
		case domain.UserIdentified:
			// Identify calls are stored as $identify and read as processed.
			ev.Event, ev.Status = "$identify", readmodel.StatusProcessed
		case domain.EventRejected:
			ev.Status, ev.Reason = readmodel.StatusFailed, d.Reason
		case domain.EventTracked:
			switch d.Outcome {
			case domain.OutcomeProcessed:
				ev.Status = readmodel.StatusProcessed
			case domain.OutcomeFailed:
				ev.Status, ev.Reason = readmodel.StatusFailed, d.Reason
			}
		}
		return ev, true
	case domain.EventProcessed, domain.EventFailed:
		d, err := domain.DecodeData[domain.OutcomeData](&e)
		if err != nil {
			return LiveEvent{}, false
		}
		ev := LiveEvent{ID: d.EventID, Status: readmodel.StatusProcessed, Outcome: true}
		if e.Type == domain.EventFailed {
			ev.Status, ev.Reason = readmodel.StatusFailed, d.Reason
		}
		return ev, true
	}
	return LiveEvent{}, false
}
