// Package processing runs per-event-type rules on every tracked event after
// it is stored, and records the outcome: EventProcessed, or EventFailed with
// the reason. It is where gamification rules (points, levels, quests) plug
// in. It is an event handler of the write side: it reads tracked events from
// JetStream and appends outcomes; it never touches read models.
package processing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
)

// Rule checks or reacts to one tracked event. Returning a *Failure marks
// the event failed for good. An error wrapping ErrUnavailable (a service
// the rule needs is down) is retried for as long as it lasts. Any other
// error is retried a few times with backoff; if it persists the event is
// quarantined — it stays pending, kept whole for reprocessing — and the
// processor moves on.
type Rule interface {
	Apply(ctx context.Context, e *domain.Event, d *domain.TrackedData) error
}

// RuleFunc adapts a function to Rule.
type RuleFunc func(ctx context.Context, e *domain.Event, d *domain.TrackedData) error

// Apply implements Rule.
func (f RuleFunc) Apply(ctx context.Context, e *domain.Event, d *domain.TrackedData) error {
	return f(ctx, e, d)
}

// Failure is a permanent rule failure: the event reads "failed" with Reason.
type Failure struct{ Reason string }

// ErrUnavailable is what a rule wraps when a service it needs is down.
var ErrUnavailable = errors.New("a service this rule needs is unavailable")

// Transient reports the handler errors the processor waits out rather
// than holds against the event (besides the event log's own, which the
// isolator knows).
func Transient(err error) bool { return errors.Is(err, ErrUnavailable) }

func (f *Failure) Error() string { return f.Reason }

// Log is where outcomes are appended.
type Log interface {
	Publish(ctx context.Context, subject string, events ...domain.Event) error
}

// Subjects names the processor's output subject.
type Subjects interface {
	OutcomeSubject(projectID string) string
}

// Metrics counts outcomes.
type Metrics interface {
	EventOutcome(outcome string)
}

// Tracked is a tracked event as the processor receives it; its own type so
// Watermill routes only EventTracked messages to the handler.
type Tracked domain.Event

// Processor applies the registered rules.
type Processor struct {
	log      Log
	subjects Subjects
	rules    map[string][]rule
	metrics  Metrics
	logger   *slog.Logger
}

// rule is a registered rule and whether it may run inline (see Settle).
type rule struct {
	Rule
	inline bool
}

// Config is what a processor needs.
type Config struct {
	Log      Log // where outcomes are appended
	Subjects Subjects
	Metrics  Metrics
	Logger   *slog.Logger
}

// New returns a processor with the built-in rules.
func New(cfg Config) (*Processor, error) {
	if cfg.Log == nil || cfg.Subjects == nil || cfg.Metrics == nil || cfg.Logger == nil {
		return nil, errors.New("processing: an outcome log, subjects, metrics and a logger are required")
	}
	p := &Processor{log: cfg.Log, subjects: cfg.Subjects, rules: map[string][]rule{}, metrics: cfg.Metrics, logger: cfg.Logger}
	for _, name := range domain.CommerceEvents {
		p.RegisterInline(name, RuleFunc(knownCurrency))
	}
	return p, nil
}

// Register adds a rule for an event name (compared canonically); "*"
// matches every event. The processor runs it after the event is stored,
// retrying and quarantining as the Rule contract says.
//
// Rules belong in New: the command handlers hold a Processor of their own
// to settle events as they are appended (Settle), and settle an event only
// when every rule for it is inline, so both must be built with the same
// rules. A rule registered on one instance only would be skipped.
func (p *Processor) Register(event string, r Rule) {
	k := domain.CanonicalName(event)
	p.rules[k] = append(p.rules[k], rule{Rule: r})
}

// RegisterInline adds a rule that is pure and cheap — it reads the event
// and nothing else, and never waits — so that it may run while the event
// is appended (Settle). An event whose every rule is inline gets its
// outcome in the same round of acks as itself, and the processor never
// sees it.
func (p *Processor) RegisterInline(event string, r Rule) {
	k := domain.CanonicalName(event)
	p.rules[k] = append(p.rules[k], rule{Rule: r, inline: true})
}

func (p *Processor) rulesFor(name string) []rule {
	return append(append([]rule{}, p.rules["*"]...), p.rules[domain.CanonicalName(name)]...)
}

// Settle runs the rules of a tracked event as it is appended, when every
// rule for it is inline, and sets its outcome on d (domain.OutcomeProcessed,
// or domain.OutcomeFailed with the rule's reason): the event is then
// appended settled, with no outcome event of its own, and the processor
// never sees it. It returns false, leaving d as it was, when the processor
// must handle the event instead (a rule that is not inline, or an inline
// rule that erred other than with a Failure).
func (p *Processor) Settle(ctx context.Context, e *domain.Event, d *domain.TrackedData) bool {
	rules := p.rulesFor(d.Event)
	for _, r := range rules {
		if !r.inline {
			return false
		}
	}
	outcome, reason := domain.OutcomeProcessed, ""
	for _, r := range rules {
		if err := r.Apply(ctx, e, d); err != nil {
			var f *Failure
			if !errors.As(err, &f) {
				return false
			}
			outcome, reason = domain.OutcomeFailed, f.Reason
			break
		}
	}
	d.Outcome, d.Reason = outcome, reason
	return true
}

// Settled counts the outcome of an event Settle settled, once it is stored.
func (p *Processor) Settled(d *domain.TrackedData) {
	if d.Outcome == domain.OutcomeProcessed {
		p.metrics.EventOutcome("processed")
	} else {
		p.metrics.EventOutcome("failed")
	}
}

// Handle runs the rules for one event and appends its outcome. A transient
// error is returned so Watermill retries it.
func (p *Processor) Handle(ctx context.Context, t *Tracked) error {
	e := (*domain.Event)(t)
	if e.Type != domain.EventTracked {
		return nil
	}
	d, err := domain.DecodeData[domain.TrackedData](e)
	if err != nil {
		return p.outcome(ctx, e, domain.EventFailed, "undecodable event: "+err.Error(), 1)
	}
	if d.Outcome != "" {
		return nil // settled as it was appended: its outcome is in it
	}
	for _, r := range p.rulesFor(d.Event) {
		if err := r.Apply(ctx, e, &d); err != nil {
			var f *Failure
			if errors.As(err, &f) {
				return p.outcome(ctx, e, domain.EventFailed, f.Reason, 1)
			}
			return fmt.Errorf("rule on %s %s: %w", d.Event, e.ID, err)
		}
	}
	return p.outcome(ctx, e, domain.EventProcessed, "", 1)
}

func (p *Processor) outcome(ctx context.Context, e *domain.Event, typ, reason string, attempts int) error {
	// The outcome id is derived from the event, so a redelivered event
	// appends a duplicate JetStream drops.
	id := domain.EventIDFor(e.ID, typ)
	out, err := domain.NewEventWithID(id, typ, domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: e.ID,
		OrganizationID: e.OrganizationID, ProjectID: e.ProjectID, CorrelationID: e.CorrelationID, CausationID: e.ID},
		domain.OutcomeData{EventID: e.ID, Reason: reason, Attempts: attempts})
	if err != nil {
		return err
	}
	if err := p.log.Publish(ctx, p.subjects.OutcomeSubject(e.ProjectID), out); err != nil {
		return err
	}
	if typ == domain.EventProcessed {
		p.metrics.EventOutcome("processed")
	} else {
		p.metrics.EventOutcome("failed")
	}
	return nil
}

// Attach registers the processor on router, subscribed to every project's
// tracked subject through sub. isolator retries a failing event, waits
// out an unavailable dependency and quarantines an event that keeps
// failing.
func (p *Processor) Attach(router *message.Router, sub message.Subscriber, topic string, logger watermill.LoggerAdapter,
	isolator *bus.Isolator,
) error {
	router.AddMiddleware(isolator.Middleware)
	proc, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) { return topic, nil },
		SubscriberConstructor: func(cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return sub, nil
		},
		AckOnUnknownEvent: true,
		Marshaler: cqrs.JSONMarshaler{GenerateName: func(v any) string {
			if _, ok := v.(*Tracked); ok {
				return domain.EventTracked
			}
			return cqrs.FullyQualifiedStructName(v)
		}},
		Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("creating event processor: %w", err)
	}
	return proc.AddHandlers(cqrs.NewEventHandler("ProcessTrackedEvent", p.Handle))
}

// currencies are the ISO 4217 codes commerce events may use.
var currencies = map[string]bool{}

func init() {
	for _, c := range []string{"AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK",
		"EGP", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KES", "KRW", "MAD", "MXN", "MYR",
		"NGN", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "SAR", "SEK", "SGD", "THB", "TRY",
		"TWD", "UAH", "USD", "VND", "ZAR"} {
		currencies[c] = true
	}
}

// knownCurrency fails commerce events whose currency is well-formed but
// not one Boost can account revenue in.
func knownCurrency(_ context.Context, _ *domain.Event, d *domain.TrackedData) error {
	c, err := commerceCurrency(d)
	if err != nil {
		return &Failure{Reason: err.Error()}
	}
	if !currencies[c] {
		return &Failure{Reason: "unsupported currency " + strconv.Quote(c)}
	}
	return nil
}

// Reprocess runs the rules on a quarantined tracked event again and
// appends its outcome (whose id is derived from the event's, so asking
// twice appends one).
func (p *Processor) Reprocess(ctx context.Context, data []byte) error {
	var e domain.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("decoding the quarantined event: %w", err)
	}
	return p.Handle(ctx, (*Tracked)(&e))
}
