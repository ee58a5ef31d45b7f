package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/ratelimit"
)

// Ingestion limits of a request; the limits of one event are domain's.
const (
	maxIngestBody = 512 << 10
	maxBatchItems = 500
)

// IngestConfig wires the ingestion endpoints.
type IngestConfig struct {
	Auth    *apikeys.Authenticator
	Usage   *apikeys.UsageRecorder // nil: last_used_at not tracked
	Limiter ratelimit.Limiter      // nil: no rate limit
}

// cors lets browsers call the publishable-key routes from any origin; the
// key, not the origin, is the credential.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, X-Api-Key, Authorization, X-Request-Id, X-Correlation-Id")
		h.Set("Access-Control-Expose-Headers", "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-Id")
		h.Set("Access-Control-Max-Age", "86400")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerKey returns the API key from x-api-key or Authorization: Bearer.
func headerKey(r *http.Request) string {
	if k := strings.TrimSpace(r.Header.Get("X-Api-Key")); k != "" {
		return k
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

func (s *Server) authenticate(ctx context.Context, plaintext string) (*apikeys.Key, *Error) {
	if plaintext == "" {
		return nil, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "missing API key: send it as x-api-key or Authorization: Bearer"}
	}
	k, err := s.cfg.Ingest.Auth.Authenticate(ctx, plaintext)
	switch {
	case err == nil:
		if s.cfg.Ingest.Usage != nil {
			s.cfg.Ingest.Usage.Record(k)
		}
		return k, nil
	case errors.Is(err, apikeys.ErrMalformed):
		return nil, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "malformed API key"}
	case errors.Is(err, apikeys.ErrRevoked):
		return nil, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "this API key has been revoked"}
	case errors.Is(err, apikeys.ErrUnknown):
		return nil, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown API key"}
	default:
		s.cfg.Log.ErrorContext(ctx, "key lookup failed", "requestId", RequestID(ctx), "err", err)
		return nil, errUnavailable("API key lookup")
	}
}

// readIngestBody reads at most maxIngestBody bytes, gunzipping when asked.
func readIngestBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	tooBig := &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("request body exceeds %d bytes", maxIngestBody)}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, maxIngestBody)
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return nil, errBadRequest("", "body is not valid gzip: %v", err)
		}
		defer gz.Close()
		rd = io.LimitReader(gz, maxIngestBody+1)
	default:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_encoding",
			Message: "Content-Encoding must be gzip or absent"}
	}
	b, err := io.ReadAll(rd)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || len(b) > maxIngestBody {
		return nil, tooBig
	}
	if err != nil {
		return nil, errBadRequest("", "reading body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errBadRequest("", "request body is empty; expected a JSON object")
	}
	return b, nil
}

func decodeObject(b []byte, v any) *Error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return errBadRequest("", "request body must be a JSON object")
	}
	if err := json.Unmarshal(t, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errBadRequest(typeErr.Field, "%s has the wrong type", typeErr.Field)
		}
		return errBadRequest("", "request body is not valid JSON: %v", err)
	}
	return nil
}

// rateLimit takes n tokens for the key and sets the RateLimit-* headers.
// A limiter outage lets the request through: losing events is worse.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, k *apikeys.Key, n int) *Error {
	if s.cfg.Ingest.Limiter == nil {
		return nil
	}
	d, err := s.cfg.Ingest.Limiter.Allow(r.Context(), k.ID, n)
	if err != nil {
		s.cfg.Log.WarnContext(r.Context(), "rate limiter unavailable; allowing", "err", err)
		return nil
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(d.Reset.Seconds()))))
	if d.Allowed {
		return nil
	}
	retry := max(1, int(math.Ceil(d.RetryAfter.Seconds())))
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", RetryAfter: retry,
		Message: fmt.Sprintf("rate limit of this key exceeded; retry in %d s", retry)}
}

// command turns a validated event into its command.
func command(ctx context.Context, k *apikeys.Key, p *parsedEvent) commands.Command {
	d := p.data
	d.KeyID, d.KeyType = k.ID, k.Type
	id := domain.EventIDFor(k.ProjectID, d.MessageID)
	occurred := domain.CorrectedTime(d.Timestamp, d.SentAt, d.ReceivedAt)
	h := commands.NewHeader(CorrelationID(ctx))
	if p.identify {
		return &commands.IdentifyUser{Header: h, EventID: id, ProjectID: k.ProjectID, OrganizationID: k.OrganizationID,
			OccurredAt: occurred, Event: d}
	}
	return &commands.TrackEvent{Header: h, EventID: id, ProjectID: k.ProjectID, OrganizationID: k.OrganizationID,
		OccurredAt: occurred, Event: d}
}

func eventID(c commands.Command) string {
	switch c := c.(type) {
	case *commands.TrackEvent:
		return c.EventID
	case *commands.IdentifyUser:
		return c.EventID
	}
	return ""
}

func forbidden(event string) *itemError {
	return &itemError{Status: http.StatusForbidden, Code: "forbidden_event", Field: "event",
		Message: fmt.Sprintf("event %q may only be sent with a secret key (sk_live_…): publishable keys are for browsers", event)}
}

// ingestOne handles track and identify: one event, 202 with its id.
func (s *Server) ingestOne(c call) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		k, e := s.authenticate(ctx, headerKey(r))
		if e != nil {
			writeError(w, e)
			return
		}
		body, e := readIngestBody(w, r)
		if e != nil {
			writeError(w, e)
			return
		}
		var we wireEvent
		if e := decodeObject(body, &we); e != nil {
			writeError(w, e)
			return
		}
		p, ie := parseEvent(&we, k.Type, c, nil, time.Now().UTC())
		if ie != nil {
			s.cfg.Metrics.Ingested("rejected", 1)
			writeError(w, &Error{Status: ie.Status, Code: ie.Code, Field: ie.Field, Message: ie.Message})
			return
		}
		if e := s.rateLimit(w, r, k, 1); e != nil {
			writeError(w, e)
			return
		}
		cmd := command(ctx, k, p)
		if err := s.cfg.Commands.SendBatch(ctx, []commands.Command{cmd}); err != nil {
			writeError(w, s.sendError(ctx, err))
			return
		}
		s.cfg.Metrics.Ingested("accepted", 1)
		writeJSON(w, http.StatusAccepted, map[string]string{"id": eventID(cmd), "status": "accepted"})
	}
}

// batchRequest is a batch as SDKs send it, read by exact field names.
type batchRequest struct {
	Batch    []json.RawMessage
	Events   []json.RawMessage
	SentAt   json.RawMessage
	WriteKey string
	APIKey   string
}

func (b *batchRequest) UnmarshalJSON(data []byte) error {
	var batch, events, writeKey, apiKey json.RawMessage
	if err := exactFields(data, map[string]*json.RawMessage{"batch": &batch, "events": &events, "sentAt": &b.SentAt,
		"writeKey": &writeKey, "apiKey": &apiKey}); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  any
	}{{"batch", batch, &b.Batch}, {"events", events, &b.Events}, {"writeKey", writeKey, &b.WriteKey}, {"apiKey", apiKey, &b.APIKey}} {
		if isNull(f.raw) {
			continue
		}
		if err := json.Unmarshal(f.raw, f.dst); err != nil {
			return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeOf(f.dst).Elem(), Field: f.name}
		}
	}
	return nil
}

type acceptedItem struct {
	Index int    `json:"index"`
	ID    string `json:"id"`
}

type rejectedItem struct {
	Index int `json:"index"`
	*itemError
}

type batchResponse struct {
	Status   string         `json:"status"`
	Accepted []acceptedItem `json:"accepted"`
	Rejected []rejectedItem `json:"rejected"`
	Error    *Error         `json:"error,omitempty"`
}

// batch handles many events: valid ones are accepted even when others are
// rejected, and each item gets its own result.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := headerKey(r)
	var k *apikeys.Key
	if key != "" {
		var e *Error
		if k, e = s.authenticate(ctx, key); e != nil {
			writeError(w, e)
			return
		}
	}
	body, e := readIngestBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req batchRequest
	if e := decodeObject(body, &req); e != nil {
		writeError(w, e)
		return
	}
	if k == nil {
		// Beacons cannot set headers: the key may come in the body.
		bodyKey := req.WriteKey
		if bodyKey == "" {
			bodyKey = req.APIKey
		}
		var e *Error
		if k, e = s.authenticate(ctx, bodyKey); e != nil {
			writeError(w, e)
			return
		}
	}
	items := req.Batch
	if items == nil {
		items = req.Events
	}
	if len(items) == 0 {
		writeError(w, errBadRequest("batch", "batch must be a non-empty array of events"))
		return
	}
	if len(items) > maxBatchItems {
		writeError(w, errBadRequest("batch", "batch has %d events; at most %d are allowed per request", len(items), maxBatchItems))
		return
	}
	now := time.Now().UTC()
	batchSentAt, ie := rawTime(req.SentAt, "sentAt")
	if ie != nil {
		writeError(w, errBadRequest(ie.Field, "%s", ie.Message))
		return
	}
	resp := batchResponse{Accepted: []acceptedItem{}, Rejected: []rejectedItem{}}
	var cmds []commands.Command
	var indexes []int
	for i, raw := range items {
		var we wireEvent
		t := bytes.TrimSpace(raw)
		if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &we) != nil {
			resp.Rejected = append(resp.Rejected, rejectedItem{i, invalid("", "event must be a JSON object")})
			continue
		}
		p, ie := parseEvent(&we, k.Type, trackCall, batchSentAt, now)
		if ie != nil {
			resp.Rejected = append(resp.Rejected, rejectedItem{i, ie})
			continue
		}
		cmds = append(cmds, command(ctx, k, p))
		indexes = append(indexes, i)
	}
	s.cfg.Metrics.Ingested("rejected", len(resp.Rejected))
	if len(cmds) == 0 {
		resp.Status = "rejected"
		resp.Error = &Error{Code: "invalid_batch", Message: fmt.Sprintf("all %d events were rejected", len(items))}
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	if e := s.rateLimit(w, r, k, len(cmds)); e != nil {
		writeError(w, e)
		return
	}
	if err := s.cfg.Commands.SendBatch(ctx, cmds); err != nil {
		writeError(w, s.sendError(ctx, err))
		return
	}
	for j, c := range cmds {
		resp.Accepted = append(resp.Accepted, acceptedItem{Index: indexes[j], ID: eventID(c)})
	}
	s.cfg.Metrics.Ingested("accepted", len(cmds))
	resp.Status = "accepted"
	if len(resp.Rejected) > 0 {
		resp.Status = "partial"
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// sendError maps a failed send: the command's own validation (which the
// edge already ran, so this is a bug, never a retry) is a 400; anything
// else is the event log's fault.
func (s *Server) sendError(ctx context.Context, err error) *Error {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		s.cfg.Log.ErrorContext(ctx, "command refused its own validation after the edge accepted it",
			"requestId", RequestID(ctx), "err", err)
		return validationToAPI(err)
	}
	s.cfg.Log.WarnContext(ctx, "events not stored", "requestId", RequestID(ctx), "err", err)
	return errUnavailable("the event log (NATS JetStream)")
}
