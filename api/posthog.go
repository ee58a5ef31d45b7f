package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
)

// PostHog's capture API, as posthog-js, posthog-node, posthog-go and the
// other PostHog libraries send it: the project key as api_key (or token)
// in the body, gzip with or without a header, base64 forms. Its answers
// are 200 — posthog-js sends again anything else below 400 — and a batch
// with some bad events stores the rest (posthog-go retries a 4xx ten
// times).

// posthogCapturePaths are the capture endpoints, each with and without
// its trailing slash.
var posthogCapturePaths = []string{"/batch", "/e", "/i/v0/e", "/capture", "/track"}

func (s *Server) routePostHog(r *mux.Router) {
	ph := r.NewRoute().Subrouter()
	ph.Use(cors)
	for _, p := range posthogCapturePaths {
		ph.HandleFunc(p, s.posthogCapture).Methods(http.MethodPost, http.MethodOptions)
		ph.HandleFunc(p+"/", s.posthogCapture).Methods(http.MethodPost, http.MethodOptions)
	}
	for _, p := range []string{"/flags", "/flags/", "/decide", "/decide/"} {
		ph.HandleFunc(p, posthogFlags).Methods(http.MethodPost, http.MethodGet, http.MethodOptions)
	}
	// Capture V1 (posthog-node's POSTHOG_CAPTURE_MODE=v1): the key as
	// Authorization: Bearer, an answer per event.
	ph.HandleFunc("/i/v1/analytics/events", s.posthogCaptureV1).Methods(http.MethodPost, http.MethodOptions)
	ph.HandleFunc("/array/{token}/config", s.posthogConfig).Methods(http.MethodGet)
	ph.HandleFunc("/array/{token}/config.js", s.posthogConfig).Methods(http.MethodGet)
}

// posthogRequest is a capture body: a batch, one event, or (older
// posthog-js) an array of events.
type posthogRequest struct {
	APIKey, Token json.RawMessage
	Batch         []json.RawMessage
	SentAt        json.RawMessage
}

func decodePostHog(body []byte) (posthogRequest, *Error) {
	var req posthogRequest
	t := bytes.TrimSpace(body)
	if len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &req.Batch); err != nil {
			return req, errBadRequest("", "request body is not a JSON array of events: %v", err)
		}
		return req, nil
	}
	var batch json.RawMessage
	if e := decodeObject(t, new(json.RawMessage)); e != nil {
		return req, e
	}
	var createdAt json.RawMessage
	if err := exactFields(t, map[string]*json.RawMessage{"api_key": &req.APIKey, "token": &req.Token,
		"batch": &batch, "sent_at": &req.SentAt, "created_at": &createdAt}); err != nil {
		return req, errBadRequest("", "request body is not valid JSON: %v", err)
	}
	if isNull(req.SentAt) {
		req.SentAt = createdAt // Capture V1's send time
	}
	if isNull(batch) {
		req.Batch = []json.RawMessage{t} // one event
		return req, nil
	}
	if err := json.Unmarshal(batch, &req.Batch); err != nil {
		return req, errBadRequest("batch", "batch must be an array of events")
	}
	return req, nil
}

// key is the project key a capture carries: api_key or token at the top,
// else the first event's api_key or properties.token.
func (req *posthogRequest) key() string {
	for _, raw := range []json.RawMessage{req.APIKey, req.Token} {
		if k, _ := rawString(raw, "api_key"); k != "" {
			return k
		}
	}
	if len(req.Batch) == 0 {
		return ""
	}
	var apiKey, props json.RawMessage
	_ = exactFields(req.Batch[0], map[string]*json.RawMessage{"api_key": &apiKey, "properties": &props})
	if k, _ := rawString(apiKey, "api_key"); k != "" {
		return k
	}
	token, _ := hasField(props, "token")
	k, _ := rawString(token, "token")
	return k
}

func (s *Server) posthogCapture(w http.ResponseWriter, r *http.Request) {
	s.capture(w, r, func(_ posthogRequest, res app.Ingested) { writeBatch(w, res, http.StatusOK) })
}

// posthogCaptureV1 answers each event by its uuid: "ok", or "drop" (not
// to be sent again) for a refused one.
func (s *Server) posthogCaptureV1(w http.ResponseWriter, r *http.Request) {
	s.capture(w, r, func(req posthogRequest, res app.Ingested) {
		if res.Accepted() == 0 {
			writeBatch(w, res, http.StatusOK) // 400, naming each event's problem
			return
		}
		results := map[string]map[string]string{}
		for i, raw := range req.Batch {
			var uuid json.RawMessage
			_ = exactFields(raw, map[string]*json.RawMessage{"uuid": &uuid})
			id, _ := rawString(uuid, "uuid")
			if id == "" {
				continue
			}
			result := map[string]string{"result": "ok"}
			if p := res.Results[i].Err; p != nil {
				result = map[string]string{"result": "drop", "reason": itemProblem(p).Message}
			}
			results[id] = result
		}
		writeJSON(w, http.StatusOK, map[string]any{"results": results})
	})
}

// capture reads a capture request and hands its events to the ingestion
// use case; answer writes the dialect's answer.
func (s *Server) capture(w http.ResponseWriter, r *http.Request, answer func(posthogRequest, app.Ingested)) {
	k, body, ok := s.readRequest(w, r, nil)
	if !ok {
		return
	}
	req, e := decodePostHog(body)
	if e != nil {
		writeError(w, e)
		return
	}
	if k, ok = s.bodyKey(w, r, k, req.key()); !ok {
		return
	}
	if e := checkBatchSize("batch", len(req.Batch)); e != nil {
		writeError(w, e)
		return
	}
	sentAt, ie := rawTime(req.SentAt, "sent_at")
	if ie != nil {
		writeError(w, errBadRequest(ie.Field, "%s", ie.Message))
		return
	}
	events := make([]app.Incoming, len(req.Batch))
	for i, raw := range req.Batch {
		events[i] = posthogItem(raw, sentAt)
	}
	s.ingest(w, r, k, events, func(res app.Ingested) {
		for _, r := range res.Results {
			if r.Err != nil && r.Err.Field != "" {
				name := posthogField(r.Err.Field)
				if rest, ok := strings.CutPrefix(r.Err.Message, r.Err.Field+" "); ok {
					r.Err.Message = name + " " + rest
				}
				r.Err.Field = name
			}
		}
		answer(req, res)
	})
}

// posthogField names a field of Boost's event as PostHog's clients sent
// it, for a refused event's answer.
func posthogField(field string) string {
	switch field {
	case "userId":
		return "distinct_id"
	case "messageId":
		return "uuid"
	case "traits":
		return "$set"
	case "traitsOnce":
		return "$set_once"
	case "anonymousId":
		return "properties.$anon_distinct_id"
	case "previousId":
		return "properties.alias"
	}
	return field
}

// posthogEvent is a PostHog event, read by exact field names.
type posthogEvent struct {
	Event, DistinctID, UUID, Timestamp, Properties, Set, SetOnce json.RawMessage
}

func (p *posthogEvent) UnmarshalJSON(b []byte) error {
	return exactFields(b, map[string]*json.RawMessage{"event": &p.Event, "distinct_id": &p.DistinctID, "uuid": &p.UUID,
		"timestamp": &p.Timestamp, "properties": &p.Properties, "$set": &p.Set, "$set_once": &p.SetOnce})
}

func posthogItem(raw json.RawMessage, sentAt *time.Time) app.Incoming {
	var p posthogEvent
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &p) != nil {
		return app.Incoming{Problem: &app.Error{Kind: app.Invalid, Message: "event must be a JSON object"}}
	}
	d, e := posthogFields(&p)
	if e != nil {
		return app.Incoming{Problem: problem(e)}
	}
	d.SentAt = sentAt
	in := app.Incoming{Event: d}
	if d.MessageID == "" && d.Timestamp != nil {
		// posthog-go sends identify, alias and group calls (and captures
		// the caller gave no Uuid) without an id, and resends them as they
		// were when an answer is lost: the event's bytes, to the
		// nanosecond of its timestamp, recognise the retry.
		sum := sha256.Sum256(t)
		in.RetryKey = "posthog-content:" + hex.EncodeToString(sum[:])
	}
	return in
}

// posthogFields maps a PostHog event onto a tracked event: its name and
// properties as sent; distinct_id (top-level, or inside properties as
// posthog-js sends it) the user; uuid the idempotency id ("" is none);
// $set and $set_once (top-level, else inside properties) the user's
// traits; an $identify's $anon_distinct_id its anonymous id, linked; a
// $create_alias's alias linked to the user.
func posthogFields(p *posthogEvent) (domain.TrackedData, *itemError) {
	var d domain.TrackedData
	var e *itemError
	if d.Event, e = rawString(p.Event, "event"); e != nil {
		return d, e
	}
	if d.Properties, e = rawObject(p.Properties, "properties"); e != nil {
		return d, e
	}
	prop := func(name string) json.RawMessage { v, _ := hasField(d.Properties, name); return v }
	distinct, field := p.DistinctID, "distinct_id"
	if isNull(distinct) {
		distinct, field = prop("distinct_id"), "properties.distinct_id"
	}
	if d.UserID, e = rawID(distinct, field); e != nil {
		return d, e
	}
	if d.MessageID, e = rawID(p.UUID, "uuid"); e != nil {
		return d, e
	}
	if d.Timestamp, e = rawTime(p.Timestamp, "timestamp"); e != nil {
		return d, e
	}
	for _, f := range []struct {
		top  json.RawMessage
		name string
		dst  *json.RawMessage
	}{{p.Set, "$set", &d.Traits}, {p.SetOnce, "$set_once", &d.TraitsOnce}} {
		raw, field := f.top, f.name
		if isNull(raw) {
			raw, field = prop(f.name), "properties."+f.name
		}
		if *f.dst, e = rawObject(raw, field); e != nil {
			return d, e
		}
	}
	switch {
	case domain.IsIdentify(d.Event):
		d.AnonymousID, e = rawID(prop("$anon_distinct_id"), "properties.$anon_distinct_id")
	case domain.CanonicalName(d.Event) == domain.CanonicalName(domain.AliasEvent):
		d.PreviousID, e = rawID(prop("alias"), "properties.alias")
	}
	return d, e
}

// posthogFlags answers the feature-flag endpoints: Boost has no feature
// flags, so every flag is off, and posthog-js carries on without logging
// an error for each page.
func posthogFlags(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/decide") {
		writeJSON(w, http.StatusOK, map[string]any{"featureFlags": map[string]any{}, "featureFlagPayloads": map[string]any{},
			"errorsWhileComputingFlags": false, "config": map[string]any{"enable_collect_everything": false},
			"supportedCompression": []string{"gzip", "gzip-js"}, "sessionRecording": false, "siteApps": []any{}})
		return
	}
	if v, _ := strconv.Atoi(r.URL.Query().Get("v")); v >= 2 {
		writeJSON(w, http.StatusOK, map[string]any{"flags": map[string]any{}, "errorsWhileComputingFlags": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"featureFlags": map[string]any{}, "featureFlagPayloads": map[string]any{},
		"errorsWhileComputingFlags": false})
}

// posthogConfig serves posthog-js's remote config for a project key: gzip
// bodies allowed, no feature flags, recordings, surveys or site apps.
func (s *Server) posthogConfig(w http.ResponseWriter, r *http.Request) {
	token := mux.Vars(r)["token"]
	k, e := s.authenticate(r.Context(), token)
	if e != nil {
		writeError(w, e)
		return
	}
	if k.Type != domain.KeyPublishable {
		// A key in a URL ends up in proxies' logs: only a browser's key.
		writeError(w, &Error{Status: http.StatusForbidden, Code: "secret_key_in_url",
			Message: "posthog-js's config is for browsers: load it with a publishable key (pk_live_…), never a secret one"})
		return
	}
	cfg := map[string]any{"token": token, "supportedCompression": []string{"gzip", "gzip-js"}, "hasFeatureFlags": false,
		"captureDeadClicks": false, "capturePerformance": false, "autocapture_opt_out": true, "autocaptureExceptions": false,
		"analytics": map[string]any{"endpoint": "/i/v0/e/"}, "elementsChainAsString": true, "sessionRecording": false,
		"heatmaps": false, "surveys": false, "defaultIdentifiedOnly": true, "siteApps": []any{}}
	if !strings.HasSuffix(r.URL.Path, ".js") {
		writeJSON(w, http.StatusOK, cfg)
		return
	}
	c, _ := json.Marshal(cfg)
	t, _ := json.Marshal(token)
	w.Header().Set("Content-Type", "application/javascript")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte("(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};window._POSTHOG_REMOTE_CONFIG[" +
		string(t) + "]={config:" + string(c) + ",siteApps:[]}})();\n"))
}
