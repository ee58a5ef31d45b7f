package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// QuarantinedMessage is a JetStream message a write-side stage (the
// command handlers, the event processor, the bridge) could not handle:
// kept whole, with where it was and why it failed, in the quarantine
// stream, so the stage could acknowledge it and move on.
type QuarantinedMessage struct {
	ID          string              `json:"id"`
	Stage       string              `json:"stage"`
	Stream      string              `json:"stream"`
	Subject     string              `json:"subject"`
	Sequence    uint64              `json:"sequence"`
	Error       string              `json:"error"`
	Attempts    int                 `json:"attempts"`
	FirstSeenAt time.Time           `json:"firstSeenAt"`
	LastSeenAt  time.Time           `json:"lastSeenAt"`
	Headers     map[string][]string `json:"headers,omitempty"`
	Data        []byte              `json:"data"`
	// Set when listed: whether it was reprocessed since, and when.
	Reprocessed   bool       `json:"-"`
	ReprocessedAt *time.Time `json:"-"`
}

var quarantineNamespace = uuid.MustParse("c5b1f0e2-1f7a-4e56-8a44-0d6f2c3b9a70")

// QuarantineID is the id of the quarantined message of stage at a stream
// sequence, so quarantining a message twice (a crash between quarantining
// and acking it) is de-duplicated.
func QuarantineID(stage, stream string, seq uint64) string {
	return uuid.NewSHA1(quarantineNamespace, fmt.Appendf(nil, "%s\x00%s\x00%d", stage, stream, seq)).String()
}

// NewQuarantinedMessage describes msg, which a stage failed to handle
// attempts times, the last with err.
func NewQuarantinedMessage(stage string, msg jetstream.Msg, err error, attempts int, firstSeen time.Time) QuarantinedMessage {
	q := QuarantinedMessage{Stage: stage, Subject: msg.Subject(), Error: diagnostic(err.Error()), Attempts: attempts,
		FirstSeenAt: firstSeen.UTC(), LastSeenAt: time.Now().UTC(), Headers: msg.Headers(), Data: msg.Data()}
	if meta, merr := msg.Metadata(); merr == nil {
		q.Stream, q.Sequence = meta.Stream, meta.Sequence.Stream
	}
	q.ID = QuarantineID(stage, q.Stream, q.Sequence)
	if q.Sequence == 0 {
		q.ID = uuid.NewString() // not a stream message: nothing to de-duplicate by
	}
	return q
}

// diagnostic bounds an error text and keeps it valid UTF-8.
func diagnostic(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 4096 {
		cut := 4096
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Quarantine stores and lists quarantined messages in JetStream.
type Quarantine struct {
	js    jetstream.JetStream
	names Names
}

// NewQuarantine returns the quarantine over nc; EnsureStreams creates its
// stream.
func NewQuarantine(nc *nats.Conn, n Names) (*Quarantine, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("creating jetstream context: %w", err)
	}
	return &Quarantine{js: js, names: n}, nil
}

// Put stores q and returns once JetStream has it; only then may the
// stage acknowledge the original.
func (qu *Quarantine) Put(ctx context.Context, q QuarantinedMessage) error {
	data, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("encoding quarantined message: %w", err)
	}
	if _, err := qu.js.Publish(ctx, qu.names.QuarantineSubject(q.Stage), data, jetstream.WithMsgID(q.ID)); err != nil {
		return fmt.Errorf("%w: quarantining a message of %s: %v", ErrUnavailable, q.Stage, err)
	}
	return nil
}

// Resolve records that the quarantined message id was reprocessed.
func (qu *Quarantine) Resolve(ctx context.Context, id string) error {
	at, _ := json.Marshal(map[string]time.Time{"at": time.Now().UTC()})
	if _, err := qu.js.Publish(ctx, qu.names.QuarantineResolvedSubject(id), at, jetstream.WithMsgID("resolved:"+id)); err != nil {
		return fmt.Errorf("%w: recording %s reprocessed: %v", ErrUnavailable, id, err)
	}
	return nil
}

// ErrNotQuarantined is returned for an id the quarantine does not hold.
var ErrNotQuarantined = errors.New("no such quarantined message")

// List returns up to limit quarantined messages, newest first, each with
// whether it was reprocessed.
func (qu *Quarantine) List(ctx context.Context, limit int) ([]QuarantinedMessage, error) {
	s, err := qu.js.Stream(ctx, qu.names.QuarantineStream())
	if err != nil {
		return nil, fmt.Errorf("%w: quarantine stream: %v", ErrUnavailable, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: quarantine stream: %v", ErrUnavailable, err)
	}
	var out []QuarantinedMessage
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading quarantine: %v", ErrUnavailable, err)
		}
		if strings.HasPrefix(raw.Subject, qu.names.Prefix+".quarantine.resolved.") {
			continue
		}
		var q QuarantinedMessage
		if json.Unmarshal(raw.Data, &q) != nil {
			continue
		}
		if err := qu.resolution(ctx, s, &q); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// Get returns the quarantined message id.
func (qu *Quarantine) Get(ctx context.Context, id string) (QuarantinedMessage, error) {
	list, err := qu.List(ctx, 10_000)
	if err != nil {
		return QuarantinedMessage{}, err
	}
	for _, q := range list {
		if q.ID == id {
			return q, nil
		}
	}
	return QuarantinedMessage{}, ErrNotQuarantined
}

func (qu *Quarantine) resolution(ctx context.Context, s jetstream.Stream, q *QuarantinedMessage) error {
	m, err := s.GetLastMsgForSubject(ctx, qu.names.QuarantineResolvedSubject(q.ID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: reading quarantine: %v", ErrUnavailable, err)
	}
	q.Reprocessed = true
	at := m.Time.UTC()
	q.ReprocessedAt = &at
	return nil
}

// Counts returns how many messages each stage has in quarantine that were
// not reprocessed.
func (qu *Quarantine) Counts(ctx context.Context) (map[string]int, error) {
	list, err := qu.List(ctx, 10_000)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, q := range list {
		if !q.Reprocessed {
			out[q.Stage]++
		}
	}
	return out, nil
}

// Msg rebuilds the original message, to hand it to its stage again.
func (q *QuarantinedMessage) Msg() *nats.Msg {
	return &nats.Msg{Subject: q.Subject, Header: nats.Header(q.Headers), Data: q.Data}
}

// Republish hands a quarantined message back to the consumers of its
// subject, as it was (the command handlers take it again; they are
// idempotent). Its message id makes a repeated request one message.
func (qu *Quarantine) Republish(ctx context.Context, q QuarantinedMessage) error {
	if _, err := qu.js.PublishMsg(ctx, q.Msg(), jetstream.WithMsgID("reprocess:"+q.ID)); err != nil {
		return fmt.Errorf("%w: republishing %s to %s: %v", ErrUnavailable, q.ID, q.Subject, err)
	}
	return nil
}
