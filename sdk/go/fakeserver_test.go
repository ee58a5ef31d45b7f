package boost

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// testKey is a well-formed secret key; the fake server accepts only it.
var testKey = "sk_live_" + strings.Repeat("0123456789abcdef", 4)

const (
	testProject    = "01990000-0000-7000-8000-000000000001"
	testAdminToken = "admin-token"
)

// fakeServer implements the batch endpoint of the Boost API contract:
// auth, size limits, per-item validation with per-item rejection,
// deterministic event ids derived from the project and messageId, and
// idempotent storage. Tests script failures with intercept and extra
// per-item rules with reject.
type fakeServer struct {
	t       *testing.T
	handler http.Handler
	srv     *httptest.Server

	mu sync.Mutex
	// maxBody is the request size limit (the real one by default).
	maxBody int
	// intercept, if set, may answer request n (0-based) itself.
	intercept func(n int, w http.ResponseWriter, r *http.Request) bool
	// reject, if set, may refuse an otherwise valid item.
	reject func(it fakeItem) *fakeRejection
	// requests is every batch request that reached the handler, in order.
	requests []fakeRequest
	// events is what was stored, by server id.
	events map[string]fakeStored
	// order lists stored ids in storage order.
	order               []string
	inflight, maxFlight int
	changed             chan struct{} // closed and replaced on every change
}

type fakeItem struct {
	Event       string          `json:"event"`
	UserID      string          `json:"userId"`
	AnonymousID string          `json:"anonymousId"`
	Properties  json.RawMessage `json:"properties"`
	Timestamp   string          `json:"timestamp"`
	MessageID   string          `json:"messageId"`
}

type fakeRejection struct {
	Code, Field, Message string
}

type fakeRequest struct {
	Header     http.Header
	SentAt     string
	MessageIDs []string
	Items      []fakeItem
	Status     int
	Bytes      int
}

type fakeStored struct {
	ID   string
	Item fakeItem
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, maxBody: MaxRequestBytes, events: map[string]fakeStored{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/batch", f.batch)
	mux.HandleFunc("GET /v1/projects/{projectId}/events/{id}", f.getEvent)
	f.handler = mux
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { f.closeServer() })
	return f
}

func (f *fakeServer) URL() string { return f.srv.URL }

func (f *fakeServer) closeServer() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Close()
}

// reopen starts serving again on addr (host:port) after closeServer.
func (f *fakeServer) reopen(addr string) {
	f.t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		f.t.Fatalf("reopening on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(f.handler)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
}

// touch wakes waitFor; callers hold f.mu.
func (f *fakeServer) touch() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor blocks until cond (called with f.mu held) is true.
func (f *fakeServer) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ok, ch := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			f.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (f *fakeServer) stored() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

func (f *fakeServer) reqs() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// sentCounts counts how often each messageId was sent, over all requests.
func (f *fakeServer) sentCounts() map[string]int {
	counts := map[string]int{}
	for _, r := range f.reqs() {
		for _, id := range r.MessageIDs {
			counts[id]++
		}
	}
	return counts
}

// storedItem returns the stored event with messageId id.
func (f *fakeServer) storedItem(messageID string) (fakeStored, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.events[eventID(messageID)]
	return s, ok
}

// eventID derives the server id from the project and the messageId, as
// the real server does (the exact function does not matter to clients,
// only that it is deterministic).
func eventID(messageID string) string {
	sum := sha256.Sum256([]byte(testProject + "/" + strings.ToLower(messageID)))
	var b [16]byte
	copy(b[:], sum[:16])
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func apiKeyOf(r *http.Request) string {
	if k := r.Header.Get("x-api-key"); k != "" {
		return k
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (f *fakeServer) batch(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, fakeRequest{Header: r.Header.Clone()})
	f.inflight++
	f.maxFlight = max(f.maxFlight, f.inflight)
	intercept, maxBody, reject := f.intercept, f.maxBody, f.reject
	f.touch()
	f.mu.Unlock()
	status := 0
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.requests[n].Status = status
		f.touch()
		f.mu.Unlock()
	}()

	// Read the whole body, then judge its size: unlike MaxBytesReader,
	// this keeps the connection usable and avoids net/http's half-second
	// RST-avoidance delay when closing, which would only slow the tests.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBody)+1))
	io.Copy(io.Discard, r.Body)
	tooBig := err == nil && len(body) > maxBody
	if tooBig {
		body = nil
	}
	// Record what was sent even when it is refused, so tests can count
	// sends of each messageId.
	var req struct {
		Batch  []json.RawMessage `json:"batch"`
		SentAt string            `json:"sentAt"`
	}
	var items []fakeItem
	if err == nil && json.Unmarshal(body, &req) == nil {
		for _, raw := range req.Batch {
			var it fakeItem
			json.Unmarshal(raw, &it)
			items = append(items, it)
		}
	}
	f.mu.Lock()
	rec := &f.requests[n]
	rec.SentAt, rec.Items, rec.Bytes = req.SentAt, items, len(body)
	if tooBig {
		rec.Bytes = maxBody + 1
	}
	for _, it := range items {
		rec.MessageIDs = append(rec.MessageIDs, it.MessageID)
	}
	f.mu.Unlock()

	if intercept != nil && intercept(n, w, r) {
		status = -1
		return
	}
	if apiKeyOf(r) != testKey {
		status = http.StatusUnauthorized
		writeErr(w, status, "unauthorized", "invalid or revoked API key")
		return
	}
	if tooBig {
		status = http.StatusRequestEntityTooLarge
		writeErr(w, status, "payload_too_large", fmt.Sprintf("request body exceeds %d bytes", maxBody))
		return
	}
	if err != nil {
		status = http.StatusBadRequest
		writeErr(w, status, "invalid_request", "reading body: "+err.Error())
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		status = http.StatusBadRequest
		writeErr(w, status, "invalid_request", "body is not JSON: "+err.Error())
		return
	}
	if len(req.Batch) == 0 || len(req.Batch) > MaxBatchSize {
		status = http.StatusBadRequest
		writeErr(w, status, "invalid_request", fmt.Sprintf("batch must have 1 to %d items", MaxBatchSize))
		return
	}
	if _, err := time.Parse(time.RFC3339, req.SentAt); err != nil {
		status = http.StatusBadRequest
		writeErr(w, status, "invalid_request", "sentAt must be an RFC 3339 time")
		return
	}

	type acc struct {
		Index int    `json:"index"`
		ID    string `json:"id"`
	}
	type rej struct {
		Index   int    `json:"index"`
		Code    string `json:"code"`
		Field   string `json:"field,omitempty"`
		Message string `json:"message"`
	}
	accepted, rejected := []acc{}, []rej{}
	f.mu.Lock()
	for i, raw := range req.Batch {
		it, bad := validateFakeItem(raw)
		if bad == nil && reject != nil {
			bad = reject(it)
		}
		if bad != nil {
			rejected = append(rejected, rej{i, bad.Code, bad.Field, bad.Message})
			continue
		}
		id := eventID(it.MessageID)
		if _, dup := f.events[id]; !dup {
			f.events[id] = fakeStored{ID: id, Item: it}
			f.order = append(f.order, id)
		}
		accepted = append(accepted, acc{i, id})
	}
	f.touch()
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if len(accepted) == 0 {
		status = http.StatusBadRequest
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"accepted": accepted, "rejected": rejected,
			"error": map[string]string{"code": "invalid_batch", "message": "every item was rejected"}})
		return
	}
	st := "accepted"
	if len(rejected) > 0 {
		st = "partial"
	}
	status = http.StatusAccepted
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": st, "accepted": accepted, "rejected": rejected})
}

func validateFakeItem(raw json.RawMessage) (fakeItem, *fakeRejection) {
	bad := func(field, format string, args ...any) *fakeRejection {
		return &fakeRejection{"invalid_request", field, fmt.Sprintf(format, args...)}
	}
	var it fakeItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return it, bad("", "item is not a JSON object of the right shape: %v", err)
	}
	nameOK := func(s string) bool { return utf8.ValidString(s) && utf8.RuneCountInString(s) <= 255 }
	switch {
	case strings.TrimSpace(it.Event) == "" || !nameOK(it.Event):
		return it, bad("event", "must be 1 to 255 characters")
	case it.UserID == "" && it.AnonymousID == "":
		return it, bad("userId", "userId or anonymousId is required")
	case !nameOK(it.UserID):
		return it, bad("userId", "must be at most 255 characters")
	case !nameOK(it.AnonymousID):
		return it, bad("anonymousId", "must be at most 255 characters")
	case !isUUID(it.MessageID):
		return it, bad("messageId", "must be a UUID")
	}
	if _, err := time.Parse(time.RFC3339, it.Timestamp); err != nil {
		return it, bad("timestamp", "must be an RFC 3339 time")
	}
	var props map[string]json.RawMessage
	if len(it.Properties) > 0 {
		if len(it.Properties) > MaxPropertiesBytes {
			return it, bad("properties", "exceed %d bytes", MaxPropertiesBytes)
		}
		if err := json.Unmarshal(it.Properties, &props); err != nil || props == nil {
			return it, bad("properties", "must be a JSON object")
		}
	}
	if isCommerce(it.Event) {
		var orderID, currency string
		if json.Unmarshal(props["orderId"], &orderID) != nil || orderID == "" {
			return it, bad("properties.orderId", "is required")
		}
		var amount float64
		if json.Unmarshal(props["amount"], &amount) != nil || amount < 0 || amount != math.Trunc(amount) {
			return it, bad("properties.amount", "must be an integer ≥ 0")
		}
		if json.Unmarshal(props["currency"], &currency) != nil || !isCurrency(currency) {
			return it, bad("properties.currency", "must be a 3-letter code")
		}
	}
	return it, nil
}

// getEvent is the admin read endpoint the integration test polls.
func (f *fakeServer) getEvent(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testAdminToken {
		writeErr(w, http.StatusUnauthorized, "unauthorized", "admin token required")
		return
	}
	f.mu.Lock()
	s, ok := f.events[r.PathValue("id")]
	f.mu.Unlock()
	if !ok || r.PathValue("projectId") != testProject {
		writeErr(w, http.StatusNotFound, "not_found", "event not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": s.ID, "status": "processed", "event": s.Item.Event,
		"userId": s.Item.UserID, "messageId": s.Item.MessageID, "properties": s.Item.Properties})
}

// retryAfterReply answers with status and a Retry-After header.
func retryAfterReply(status int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		code := map[int]string{429: "rate_limited", 503: "unavailable"}[status]
		if code == "" {
			code = "http_" + strconv.Itoa(status)
		}
		writeErr(w, status, code, "try again later")
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
