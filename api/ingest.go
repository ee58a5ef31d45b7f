package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/ratelimit"
)

// The limits of a request are the contract's (domain).
const (
	maxIngestBody = domain.MaxBodyBytes
	maxBatchItems = domain.MaxBatchItems
)

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

func (s *Server) authenticate(ctx context.Context, plaintext string) (*apikeys.Key, *Error) {
	k, err := s.app.Queries.Authenticate.Handle(ctx, app.Authenticate{Plaintext: plaintext})
	if err != nil {
		return nil, fromApp(err)
	}
	return k, nil
}

func decodeObject(b []byte, v any) *Error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return errBadRequest("", "request body must be a JSON object")
	}
	var err error
	if r, ok := v.(bodyReader); ok {
		err = r.readBody(t)
	} else {
		err = json.Unmarshal(t, v)
	}
	if err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errBadRequest(typeErr.Field, "%s has the wrong type", typeErr.Field)
		}
		return errBadRequest("", "request body is not valid JSON: %v", err)
	}
	return nil
}

// bodyReader is a request type that reads a whole body itself, validating
// it (exactFields does): decodeObject hands it the body directly, where
// encoding/json would validate the body and scan it once more first.
type bodyReader interface{ readBody(b []byte) error }

// limitHeaders sets the RateLimit-* headers of a request's answer.
func limitHeaders(w http.ResponseWriter, d *ratelimit.Decision) {
	if d == nil {
		return
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(d.Reset.Seconds()))))
}

// itemProblem shows an item's error in a batch answer.
func itemProblem(e *app.Error) *itemError {
	x := fromApp(e)
	return &itemError{Status: x.Status, Code: x.Code, Field: x.Field, Message: x.Message}
}

// ingestOne handles track and identify: one event, 202 with its id.
func (s *Server) ingestOne(c call) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var we wireEvent
		k, _, ok := s.readRequest(w, r, &we)
		if !ok {
			return
		}
		if k, ok = s.bodyKey(w, r, k); !ok {
			return
		}
		s.ingest(w, r, k, []app.Incoming{decodeEvent(&we, c, nil)}, func(res app.Ingested) {
			if p := res.Results[0].Err; p != nil {
				writeError(w, fromApp(p))
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]string{"id": res.Results[0].ID, "status": "accepted"})
		})
	}
}

// batchRequest is a batch as SDKs send it, read by exact field names:
// Boost's and the seed product's {events: […]} or Segment's {batch: […]},
// with the key in the body when a beacon could not set a header.
type batchRequest struct {
	Batch    []json.RawMessage
	Events   []json.RawMessage
	SentAt   json.RawMessage
	WriteKey string
	APIKey   string
}

func (b *batchRequest) UnmarshalJSON(data []byte) error { return b.readBody(data) }

func (b *batchRequest) readBody(data []byte) error {
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
		// The body is valid JSON (exactFields read it): an array's items
		// are split, not decoded again.
		if items, ok := f.dst.(*[]json.RawMessage); ok {
			if *items, ok = splitArray(f.raw); ok {
				continue
			}
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
	// Success is Segment's answer field; its clients do not read it.
	Success  bool           `json:"success,omitempty"`
	Status   string         `json:"status"`
	Accepted []acceptedItem `json:"accepted"`
	Rejected []rejectedItem `json:"rejected"`
	Error    *Error         `json:"error,omitempty"`
}

// itemDecoder reads one batch item of a dialect into what the ingestion
// use case takes; batchSentAt applies when the item has no sentAt.
type itemDecoder func(raw json.RawMessage, batchSentAt *time.Time) app.Incoming

// batch handles Boost's and Segment's batches: valid events are accepted
// even when others are rejected, and each item gets its own result.
func (s *Server) batch(decode itemDecoder, okStatus int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req batchRequest
		k, _, ok := s.readRequest(w, r, &req)
		if !ok {
			return
		}
		// Beacons cannot set headers: the key may come in the body.
		if k, ok = s.bodyKey(w, r, k, req.WriteKey, req.APIKey); !ok {
			return
		}
		items, field := req.Batch, "batch"
		if items == nil && req.Events != nil {
			items, field = req.Events, "events"
		}
		if e := checkBatchSize(field, len(items)); e != nil {
			writeError(w, e)
			return
		}
		batchSentAt, ie := rawTime(req.SentAt, "sentAt")
		if ie != nil {
			writeError(w, errBadRequest(ie.Field, "%s", ie.Message))
			return
		}
		events := make([]app.Incoming, len(items))
		for i, raw := range items {
			events[i] = decode(raw, batchSentAt)
		}
		s.ingest(w, r, k, events, func(res app.Ingested) { writeBatch(w, res, okStatus) })
	}
}

// readRequest starts every ingestion request, whatever its dialect: it
// authenticates the key of the request's headers before the body is read
// (nil when the headers carry none), reads the body however the client
// encoded it, and decodes it into v unless v is nil. It answers the
// request and reports false when any of that fails.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, v any) (*apikeys.Key, []byte, bool) {
	var k *apikeys.Key
	var e *Error
	if hk := headerKey(r); hk != "" {
		k, e = s.authenticate(r.Context(), hk)
	}
	var body []byte
	if e == nil {
		body, e = readIngestBody(w, r)
	}
	if e == nil && v != nil {
		e = decodeObject(body, v)
	}
	if e != nil {
		writeError(w, e)
		return nil, nil, false
	}
	return k, body, true
}

// bodyKey returns k, the headers' key, or else authenticates the first
// of the keys the body carried; it answers the request and reports false
// when there is no valid key.
func (s *Server) bodyKey(w http.ResponseWriter, r *http.Request, k *apikeys.Key, bodyKeys ...string) (*apikeys.Key, bool) {
	if k != nil {
		return k, true
	}
	first := ""
	for _, bk := range bodyKeys {
		if bk = strings.TrimSpace(bk); bk != "" {
			first = bk
			break
		}
	}
	k, e := s.authenticate(r.Context(), first)
	if e != nil {
		writeError(w, e)
		return nil, false
	}
	return k, true
}

func checkBatchSize(field string, n int) *Error {
	if n == 0 {
		return errBadRequest(field, "%s must be a non-empty array of events", field)
	}
	if n > maxBatchItems {
		return errBadRequest(field, "%s has %d events; at most %d are allowed per request", field, n, maxBatchItems)
	}
	return nil
}

// ingest hands a request's events to the ingestion use case and answers
// with answer, or with the error that refused the whole request (a rate
// limit, an outage).
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, k *apikeys.Key, events []app.Incoming, answer func(app.Ingested)) {
	res, err := s.app.Commands.Ingest.Handle(r.Context(), app.Ingest{Key: k, Events: events})
	limitHeaders(w, res.Limit)
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	answer(res)
}

// notObject is the problem of a batch item that is not a JSON object. The
// item is one of a batchRequest's, so valid JSON.
func notObject(raw json.RawMessage, w *wireEvent) *app.Error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || exactFieldsOfValid(t, w.fields()) != nil {
		return &app.Error{Kind: app.Invalid, Message: "event must be a JSON object"}
	}
	return nil
}

// nativeItem reads a batch item in Boost's shape (the seed product's too).
func nativeItem(raw json.RawMessage, batchSentAt *time.Time) app.Incoming {
	var we wireEvent
	if p := notObject(raw, &we); p != nil {
		return app.Incoming{Problem: p}
	}
	return decodeEvent(&we, trackCall, batchSentAt)
}

// writeBatch answers a batch: okStatus with each item's id or problem, or
// 400 when none was accepted.
func writeBatch(w http.ResponseWriter, res app.Ingested, okStatus int) {
	resp := batchResponse{Accepted: []acceptedItem{}, Rejected: []rejectedItem{}}
	for i, r := range res.Results {
		if r.Err != nil {
			resp.Rejected = append(resp.Rejected, rejectedItem{i, itemProblem(r.Err)})
			continue
		}
		resp.Accepted = append(resp.Accepted, acceptedItem{Index: i, ID: r.ID})
	}
	switch {
	case len(resp.Accepted) == 0:
		resp.Status = "rejected"
		resp.Error = &Error{Code: "invalid_batch", Message: fmt.Sprintf("all %d events were rejected", len(res.Results))}
		writeJSON(w, http.StatusBadRequest, resp)
		return
	case len(resp.Rejected) > 0:
		resp.Status = "partial"
	default:
		resp.Status = "accepted"
	}
	resp.Success = okStatus == http.StatusOK
	writeJSON(w, okStatus, resp)
}
