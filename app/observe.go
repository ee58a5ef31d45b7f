package app

import (
	"context"
	"log/slog"
	"time"
)

// observer is the decorator every use case gets: one log line and one
// metric per call, with the request and correlation ids of its context.
type observer struct {
	log     *slog.Logger
	metrics Metrics
}

// observe wraps h so each call is counted by outcome, timed, and logged
// when it fails (at warn for a dependency's fault, info for the caller's);
// successes are logged at debug: the ports already log every request.
func observe[C, R any](o observer, name string, h Handler[C, R]) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, c C) (R, error) {
		start := time.Now()
		r, err := h.Handle(ctx, c)
		took := time.Since(start)
		outcome := "ok"
		level := slog.LevelDebug
		if err != nil {
			outcome = string(KindOf(err))
			level = slog.LevelInfo
			if KindOf(err) == Unavailable {
				level = slog.LevelWarn
			}
		}
		o.metrics.UseCase(name, outcome, took)
		if o.log.Enabled(ctx, level) {
			attrs := []any{"useCase", name, "outcome", outcome, "durationMs", float64(took.Microseconds()) / 1000,
				"requestId", RequestID(ctx), "correlationId", CorrelationID(ctx)}
			if err != nil {
				attrs = append(attrs, "err", err.Error())
			}
			o.log.Log(ctx, level, "use case", attrs...)
		}
		return r, err
	})
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	correlationIDKey
)

// WithRequest returns ctx carrying a request's id and the correlation id
// that follows it into commands and events; ports call it once per request.
func WithRequest(ctx context.Context, requestID, correlationID string) context.Context {
	ctx = context.WithValue(ctx, requestIDKey, requestID)
	return context.WithValue(ctx, correlationIDKey, correlationID)
}

// RequestID returns the id of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// CorrelationID returns the id that follows this request into commands and
// events: the caller's, or the request id.
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(correlationIDKey).(string)
	return s
}
