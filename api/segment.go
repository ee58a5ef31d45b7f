package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
)

// Segment's HTTP Tracking API, which RudderStack and many other SDKs speak
// too: one path per call, analytics.js's one-letter paths, and batches.
// The key comes as the Basic user name (empty password), a writeKey in the
// body, or Boost's own headers; see docs/migrating.md for what maps to
// what.

// segmentCalls are the single-call paths and the call each takes.
var segmentCalls = map[string]string{
	"/track": "track", "/t": "track",
	"/page": "page", "/p": "page",
	"/screen": "screen", "/s": "screen",
	"/alias": "alias", "/a": "alias",
	"/group": "group", "/g": "group",
	"/i": "identify", // /v1/identify is Boost's own, which takes Segment's identify as it is
}

// segmentBatches are the batch paths: the HTTP API's, its bulk import's
// and analytics.js's batching delivery.
var segmentBatches = []string{"/batch", "/import", "/b"}

func (s *Server) routeSegment(v1 *mux.Router) {
	for _, path := range segmentBatches {
		v1.HandleFunc(path, s.batch(segmentItem, http.StatusOK)).Methods(http.MethodPost, http.MethodOptions)
	}
	for path, call := range segmentCalls {
		v1.HandleFunc(path, s.segmentCall(call)).Methods(http.MethodPost, http.MethodOptions)
	}
	v1.HandleFunc("/projects/{writeKey}/settings", s.segmentSettings).Methods(http.MethodGet)
}

// segmentSettings serves what analytics.js loads from its CDN before it
// sends anything (it does not start without them): this server as the
// API host, no destinations, every event enabled. Point analytics.js's
// cdnURL at Boost and it needs nothing from Segment.
func (s *Server) segmentSettings(w http.ResponseWriter, r *http.Request) {
	k, e := s.authenticate(r.Context(), mux.Vars(r)["writeKey"])
	if e != nil {
		writeError(w, e)
		return
	}
	if k.Type != domain.KeyPublishable {
		// A key in a URL ends up in proxies' logs: only a browser's key.
		writeError(w, &Error{Status: http.StatusForbidden, Code: "secret_key_in_url",
			Message: "analytics.js settings are for browsers: load them with a publishable key (pk_live_…), never a secret one"})
		return
	}
	protocol := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		protocol = "https"
	}
	host := r.Host
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" {
		host = fwd
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{
		"integrations": map[string]any{"Segment.io": map[string]any{"apiHost": host + "/v1", "protocol": protocol,
			"unbundledIntegrations": []any{}, "addBundledMetadata": true, "maybeBundledConfigIds": map[string]any{}}},
		"plan": map[string]any{"track": map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}},
			"identify": map[string]any{"__default": map[string]any{"enabled": true}},
			"group":    map[string]any{"__default": map[string]any{"enabled": true}}},
		"edgeFunction": map[string]any{}, "analyticsNextEnabled": true, "middlewareSettings": map[string]any{},
		"enabledMiddleware": map[string]any{}, "metrics": map[string]any{"sampleRate": 0}, "remotePlugins": []any{},
	})
}

// segmentCall handles one call: 200 with its id, as Segment answers, or
// the call's problem.
func (s *Server) segmentCall(call string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var we wireEvent
		k, body, ok := s.readRequest(w, r, &we)
		if !ok {
			return
		}
		// analytics.js puts the write key in every event as well.
		var writeKey json.RawMessage
		_ = exactFields(body, map[string]*json.RawMessage{"writeKey": &writeKey})
		key, _ := rawString(writeKey, "writeKey")
		if k, ok = s.bodyKey(w, r, k, key); !ok {
			return
		}
		s.ingest(w, r, k, []app.Incoming{segmentEvent(&we, call, nil)}, func(res app.Ingested) {
			if p := res.Results[0].Err; p != nil {
				writeError(w, fromApp(p))
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"success": true, "id": res.Results[0].ID})
		})
	}
}

// segmentItem reads one item of a Segment batch, whose type says the call.
func segmentItem(raw json.RawMessage, batchSentAt *time.Time) app.Incoming {
	var we wireEvent
	if p := notObject(raw, &we); p != nil {
		return app.Incoming{Problem: p}
	}
	call, e := rawString(we.Type, "type")
	if e != nil {
		return app.Incoming{Problem: problem(e)}
	}
	return segmentEvent(&we, call, batchSentAt)
}

// segmentEvent maps one Segment call onto a tracked event:
//
//	track     event as sent, properties as sent
//	identify  $identify; its traits are the properties (and the user's traits)
//	page      page_view; properties as sent, plus name and category when they are not among them
//	screen    screen_view; likewise
//	alias     $create_alias; previousId linked to userId, and kept as properties.previousId
//	group     $group; properties {"groupId": …, "traits": {…}}
//
// The call time is timestamp, else RudderStack's originalTimestamp;
// context and integrations are kept as sent.
func segmentEvent(w *wireEvent, call string, batchSentAt *time.Time) app.Incoming {
	d, e := segmentFields(w, call)
	if e != nil {
		return app.Incoming{Problem: problem(e)}
	}
	if d.SentAt == nil {
		d.SentAt = batchSentAt
	}
	return app.Incoming{Event: d}
}

func segmentFields(w *wireEvent, call string) (domain.TrackedData, *itemError) {
	var d domain.TrackedData
	if e := decodeCommon(w, &d); e != nil {
		return d, e
	}
	var e *itemError
	if d.Timestamp, e = rawTime(w.Timestamp, "timestamp"); e != nil {
		return d, e
	}
	if d.Timestamp == nil {
		if d.Timestamp, e = rawTime(w.OriginalTimestamp, "originalTimestamp"); e != nil {
			return d, e
		}
	}
	switch call {
	case "track":
		if d.Event, e = rawString(w.Event, "event"); e != nil {
			return d, e
		}
		d.Properties, e = rawObject(w.Properties, "properties")
	case "identify":
		d.Event = domain.IdentifyEvent
		d.Properties, e = rawObject(w.Traits, "traits")
	case "page", "screen":
		d.Event = domain.PageEvent
		if call == "screen" {
			d.Event = domain.ScreenEvent
		}
		d.Properties, e = pageProperties(w)
	case "alias":
		d.Event = domain.AliasEvent
		if d.PreviousID == "" {
			return d, invalid("previousId", "previousId is required on an alias call")
		}
		d.Properties, _ = json.Marshal(map[string]string{"previousId": d.PreviousID})
	case "group":
		d.Event = domain.GroupEvent
		d.Properties, e = groupProperties(w)
	default:
		return d, invalid("type", "type must be track, identify, page, screen, alias or group")
	}
	return d, e
}

// pageProperties are a page or screen call's properties with its name and
// category added where the properties do not carry them already (Segment
// reserves properties.name for the page's name; analytics.js copies both).
func pageProperties(w *wireEvent) (json.RawMessage, *itemError) {
	props, e := rawObject(w.Properties, "properties")
	if e != nil {
		return nil, e
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"name", w.Name}, {"category", w.Category}} {
		v, e := rawString(f.raw, f.name)
		if e != nil {
			return nil, e
		}
		if v == "" {
			continue
		}
		if _, present := hasField(props, f.name); present {
			continue
		}
		props = withField(props, f.name, v)
	}
	return props, nil
}

// groupProperties are a group call's groupId and traits.
func groupProperties(w *wireEvent) (json.RawMessage, *itemError) {
	id, e := rawID(w.GroupID, "groupId")
	if e != nil {
		return nil, e
	}
	if id == "" {
		return nil, invalid("groupId", "groupId is required on a group call")
	}
	traits, e := rawObject(w.Traits, "traits")
	if e != nil {
		return nil, e
	}
	b, _ := json.Marshal(struct {
		GroupID string          `json:"groupId"`
		Traits  json.RawMessage `json:"traits,omitempty"`
	}{id, traits})
	return b, nil
}

// hasField reports whether the JSON object obj has a field name.
func hasField(obj json.RawMessage, name string) (json.RawMessage, bool) {
	if len(obj) == 0 {
		return nil, false
	}
	var raw json.RawMessage
	if exactFields(obj, map[string]*json.RawMessage{name: &raw}) != nil || raw == nil {
		return nil, false
	}
	return raw, true
}

// withField appends "name": value to a compact JSON object (nil: {}).
func withField(obj json.RawMessage, name, value string) json.RawMessage {
	v, _ := json.Marshal(value)
	k, _ := json.Marshal(name)
	t := bytes.TrimSpace(obj)
	if len(t) < 2 {
		t = []byte("{}")
	}
	out := append([]byte{}, t[:len(t)-1]...)
	if len(bytes.TrimSpace(out)) > 1 {
		out = append(out, ',')
	}
	out = append(out, k...)
	out = append(out, ':')
	out = append(out, v...)
	return append(out, '}')
}
