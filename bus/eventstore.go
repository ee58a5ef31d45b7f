package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/domain"
)

// ErrConcurrency means another writer appended to the aggregate since it
// was loaded; the caller reloads and decides again.
var ErrConcurrency = errors.New("aggregate changed concurrently")

// EventStore appends domain events to per-aggregate JetStream subjects with
// optimistic concurrency, and loads an aggregate's history.
type EventStore struct {
	js     jetstream.JetStream
	names  Names
	stream jetstream.Stream

	mu    sync.Mutex
	cache map[string]*aggregateHistory
}

type aggregateHistory struct {
	events []domain.Event
	seq    uint64
}

const maxCachedAggregates = 10_000

// NewEventStore binds to the event stream, which must exist (EnsureStreams).
func NewEventStore(ctx context.Context, nc *nats.Conn, n Names) (*EventStore, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPendingAppends))
	if err != nil {
		return nil, fmt.Errorf("creating jetstream context: %w", err)
	}
	stream, err := js.Stream(ctx, n.EventStream())
	if err != nil {
		return nil, fmt.Errorf("binding event stream %s: %w", n.EventStream(), err)
	}
	return &EventStore{js: js, names: n, stream: stream, cache: map[string]*aggregateHistory{}}, nil
}

// Load returns every event of one aggregate and its version: the stream
// sequence of its last event, 0 when it has none. Histories are cached and
// only the tail written since is read.
func (s *EventStore) Load(ctx context.Context, aggregateType, id string) ([]domain.Event, uint64, error) {
	subject := s.names.AggregateSubject(aggregateType, id)
	last, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: reading last event of %s: %v", ErrUnavailable, subject, err)
	}

	s.mu.Lock()
	h := s.cache[subject]
	var events []domain.Event
	var from uint64 = 1
	if h != nil {
		events = append(events, h.events...)
		from = h.seq + 1
		if h.seq == last.Sequence {
			s.mu.Unlock()
			return events, last.Sequence, nil
		}
	}
	s.mu.Unlock()

	for seq := from; seq <= last.Sequence; {
		msg, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: reading %s at %d: %v", ErrUnavailable, subject, seq, err)
		}
		var e domain.Event
		if err := json.Unmarshal(msg.Data, &e); err != nil {
			return nil, 0, fmt.Errorf("decoding event %d of %s: %w", msg.Sequence, subject, err)
		}
		events = append(events, e)
		seq = msg.Sequence + 1
	}

	s.mu.Lock()
	if len(s.cache) >= maxCachedAggregates {
		clear(s.cache)
	}
	s.cache[subject] = &aggregateHistory{events: events, seq: last.Sequence}
	s.mu.Unlock()
	return events, last.Sequence, nil
}

// Append stores events on the aggregate's subject, succeeding only if the
// aggregate is still at expectedVersion. Each event's id is its JetStream
// message id, so a retried append is de-duplicated.
func (s *EventStore) Append(ctx context.Context, aggregateType, id string, expectedVersion uint64, events ...domain.Event) error {
	subject := s.names.AggregateSubject(aggregateType, id)
	version := expectedVersion
	for i := range events {
		data, err := domain.EncodeEvent(&events[i])
		if err != nil {
			return fmt.Errorf("encoding event %s: %w", events[i].ID, err)
		}
		msg := eventMsg(subject, &events[i], data)
		ack, err := s.js.PublishMsg(ctx, msg,
			jetstream.WithMsgID(events[i].ID),
			jetstream.WithExpectLastSequencePerSubject(version))
		if err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				return fmt.Errorf("%w: %s expected version %d", ErrConcurrency, subject, version)
			}
			return fmt.Errorf("%w: appending to %s: %v", ErrUnavailable, subject, err)
		}
		version = ack.Sequence
	}
	return nil
}

// eventMsg wraps an event so it is also a Watermill message (uuid and
// name headers), which lets Watermill event handlers consume the stream,
// and says in headers where its Kafka record goes (aggregate type and
// partition key), so the bridge routes it without decoding it.
func eventMsg(subject string, e *domain.Event, data []byte) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(wmnats.WatermillUUIDHdr, e.ID)
	msg.Header.Set(headerName, e.Type)
	msg.Header.Set(headerAggregate, e.AggregateType)
	msg.Header.Set(headerKey, e.PartitionKey())
	return msg
}

// Headers of every event message: the event's type (Watermill's name
// header), its aggregate type and its partition key.
const (
	headerName      = "name"
	headerAggregate = "Boost-Aggregate"
	headerKey       = "Boost-Key"
)

// Publish stores events on subject without a concurrency check, each
// de-duplicated by its id, and returns once JetStream has acknowledged all
// of them. Tracked events use it: they are facts, not decisions.
func (s *EventStore) Publish(ctx context.Context, subject string, events ...domain.Event) error {
	appends := make([]Append, len(events))
	for i := range events {
		appends[i] = Append{Subject: subject, Event: events[i]}
	}
	return s.PublishAll(ctx, appends)
}

// Append is one event and the subject it is appended to.
type Append struct {
	Subject string
	Event   domain.Event
}

// publishStallWait is how long an append waits for room when the
// connection has maxPendingAppends publishes awaiting their acks.
const (
	publishStallWait  = 5 * time.Second
	maxPendingAppends = 8192
)

// PublishAll appends events to their subjects, in order, with one round
// of acks.
func (s *EventStore) PublishAll(ctx context.Context, appends []Append) error {
	if !s.js.Conn().IsConnected() {
		return fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(appends))
	for i := range appends {
		a := &appends[i]
		data, err := domain.EncodeEvent(&a.Event)
		if err != nil {
			return fmt.Errorf("encoding event %s: %w", a.Event.ID, err)
		}
		// Many handlers append at once: wait for room among the pending
		// publishes rather than fail the command for lack of it.
		f, err := s.js.PublishMsgAsync(eventMsg(a.Subject, &a.Event, data), jetstream.WithMsgID(a.Event.ID),
			jetstream.WithStallWait(publishStallWait))
		if err != nil {
			return fmt.Errorf("%w: publishing to %s: %v", ErrUnavailable, a.Subject, err)
		}
		futures = append(futures, f)
	}
	subject := ""
	if len(appends) > 0 {
		subject = appends[0].Subject
	}
	return waitAcks(ctx, futures, subject)
}

func waitAcks(ctx context.Context, futures []jetstream.PubAckFuture, subject string) error {
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("%w: storing in %s: %v", ErrUnavailable, subject, err)
		case <-timer.C:
			return fmt.Errorf("%w: no JetStream ack for %s", ErrUnavailable, subject)
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	return nil
}
