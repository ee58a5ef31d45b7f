package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/retry"
)

// Isolator is the Watermill middleware that keeps one message from
// stopping a write-side stage. A handler error caused by the transport
// (ErrUnavailable: NATS or JetStream down) is never held against the
// message: it is handed back for redelivery with a growing delay, for as
// long as the outage lasts. Any other error (or a panic) is retried in
// process a few times with backoff; if it persists the message is put in
// quarantine — kept whole, with its stream sequence and the error — and
// acknowledged, so the stage moves past it.
type Isolator struct {
	stage       string
	health      *health.Stage
	quarantine  *Quarantine
	log         *slog.Logger
	maxAttempts int
	transient   func(error) bool
}

// IsolatorOption tunes an Isolator.
type IsolatorOption func(*Isolator)

// WithMaxAttempts sets how many times a failing message is tried before
// it is quarantined (default 4).
func WithMaxAttempts(n int) IsolatorOption { return func(i *Isolator) { i.maxAttempts = n } }

// WithTransient adds errors that mean "a dependency is down, retry for as
// long as it takes" besides ErrUnavailable.
func WithTransient(fn func(error) bool) IsolatorOption { return func(i *Isolator) { i.transient = fn } }

// NewIsolator returns the isolator of stage, reporting to h.
func NewIsolator(stage string, h *health.Stage, q *Quarantine, log *slog.Logger, opts ...IsolatorOption) (*Isolator, error) {
	i := &Isolator{stage: stage, health: h, quarantine: q, log: log, maxAttempts: 4}
	for _, o := range opts {
		o(i)
	}
	switch {
	case stage == "" || h == nil || q == nil || log == nil:
		return nil, errors.New("isolator: stage, health, quarantine and log are required")
	case i.maxAttempts < 1:
		return nil, fmt.Errorf("isolator: max attempts must be at least 1, not %d", i.maxAttempts)
	}
	return i, nil
}

// Transient reports whether err means the stage is waiting on a
// dependency rather than failing on the message.
func (i *Isolator) Transient(err error) bool {
	return errors.Is(err, ErrUnavailable) || (i.transient != nil && i.transient(err))
}

// Middleware implements message.HandlerMiddleware.
func (i *Isolator) Middleware(h message.HandlerFunc) message.HandlerFunc {
	h = middleware.Recoverer(h)
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		first := time.Now()
		var err error
		for attempt := 1; ; attempt++ {
			var out []*message.Message
			if out, err = h(msg); err == nil {
				i.health.Progressed(1)
				return out, nil
			}
			if ctx.Err() != nil {
				return nil, err // shutting down: handed back, not held against it
			}
			if i.Transient(err) {
				i.health.Failed(err, "NATS JetStream")
				i.log.WarnContext(ctx, i.stage+": waiting on a dependency; the message will be redelivered",
					"messageId", msg.UUID, "err", err)
				return nil, err
			}
			i.health.Failed(err, "")
			if attempt >= i.maxAttempts {
				break
			}
			if !retry.Sleep(ctx, retry.Delay(attempt, 3*time.Second)) {
				return nil, err
			}
		}
		raw, ok := natsMsgOf(ctx)
		if !ok {
			return nil, err // not from a stream: nothing to quarantine it with
		}
		q := NewQuarantinedMessage(i.stage, raw, err, i.maxAttempts, first)
		if perr := i.quarantine.Put(context.WithoutCancel(ctx), q); perr != nil {
			i.health.Failed(perr, "NATS JetStream")
			return nil, perr // kept in its stream: redelivered, quarantined later
		}
		i.health.Quarantined(1)
		i.log.ErrorContext(ctx, i.stage+": message quarantined after repeated failures; moving on",
			"quarantineId", q.ID, "stream", q.Stream, "sequence", q.Sequence, "subject", q.Subject,
			"attempts", q.Attempts, "err", err)
		return nil, nil
	}
}

type natsMsgKey struct{}

// withNATSMsg remembers the message a Watermill message was made from, so
// the isolator can quarantine it byte for byte.
func withNATSMsg(ctx context.Context, m jetstream.Msg) context.Context {
	return context.WithValue(ctx, natsMsgKey{}, m)
}

func natsMsgOf(ctx context.Context) (jetstream.Msg, bool) {
	m, ok := ctx.Value(natsMsgKey{}).(jetstream.Msg)
	return m, ok
}

// QuarantineUndecodable is a Subscriber's undecodable hook for stage: the
// message is quarantined, counted, and then terminated.
func QuarantineUndecodable(stage string, h *health.Stage, q *Quarantine, log *slog.Logger) func(jetstream.Msg, error) error {
	return func(m jetstream.Msg, err error) error {
		qm := NewQuarantinedMessage(stage, m, fmt.Errorf("undecodable message: %w", err), 1, time.Now())
		if perr := q.Put(context.Background(), qm); perr != nil {
			h.Failed(perr, "NATS JetStream")
			return perr
		}
		h.Quarantined(1)
		log.Error(stage+": undecodable message quarantined", "quarantineId", qm.ID, "stream", qm.Stream,
			"sequence", qm.Sequence, "subject", qm.Subject, "err", err)
		return nil
	}
}

// WatchBacklog reports to h, every interval until ctx ends, how many
// messages the durable consumers of stream that match wants have not had
// acknowledged: the stage's backlog.
func WatchBacklog(ctx context.Context, js jetstream.JetStream, stream string, wants func(consumer string) bool,
	h *health.Stage, interval time.Duration,
) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s, err := js.Stream(ctx, stream); err == nil {
			var backlog int64
			infos := s.ListConsumers(ctx)
			for ci := range infos.Info() {
				if wants(ci.Name) {
					backlog += int64(ci.NumPending) + int64(ci.NumAckPending)
				}
			}
			if infos.Err() == nil {
				h.Backlog(backlog)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
