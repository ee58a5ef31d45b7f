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
	k, err := s.app.Queries.Authenticate.Handle(ctx, app.Authenticate{Plaintext: plaintext})
	if err != nil {
		return nil, fromApp(err)
	}
	return k, nil
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
		res, err := s.app.Commands.Ingest.Handle(ctx, app.Ingest{Key: k, Events: []app.Incoming{decodeEvent(&we, c, nil)}})
		limitHeaders(w, res.Limit)
		if err != nil {
			writeError(w, fromApp(err))
			return
		}
		if p := res.Results[0].Err; p != nil {
			writeError(w, fromApp(p))
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"id": res.Results[0].ID, "status": "accepted"})
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
	batchSentAt, ie := rawTime(req.SentAt, "sentAt")
	if ie != nil {
		writeError(w, errBadRequest(ie.Field, "%s", ie.Message))
		return
	}
	events := make([]app.Incoming, len(items))
	for i, raw := range items {
		var we wireEvent
		t := bytes.TrimSpace(raw)
		if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &we) != nil {
			events[i].Problem = &app.Error{Kind: app.Invalid, Message: "event must be a JSON object"}
			continue
		}
		events[i] = decodeEvent(&we, trackCall, batchSentAt)
	}
	res, err := s.app.Commands.Ingest.Handle(ctx, app.Ingest{Key: k, Events: events})
	limitHeaders(w, res.Limit)
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	writeBatch(w, res)
}

// writeBatch answers a batch: 202 with each item's id or problem, or 400
// when none was accepted.
func writeBatch(w http.ResponseWriter, res app.Ingested) {
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
	writeJSON(w, http.StatusAccepted, resp)
}
