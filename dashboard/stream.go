package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
)

// seenLimit bounds how many event ids a live tail remembers to match
// outcomes to the events it showed.
const seenLimit = 10000

// eventStream is the live tail: Server-Sent Events straight from the
// pipeline's tracked and outcome subjects, filtered by type and user. An
// outcome is sent only for an event this tail showed, so filters apply to
// status changes too.
func (d *Dashboard) eventStream(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	if d.cfg.Feed == nil {
		d.renderError(w, r, http.StatusServiceUnavailable, "Live events unavailable",
			"This process has no connection to the pipeline (NATS); the live tail runs on API nodes.")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	f := filtersOf(r)
	types := map[string]bool{}
	for _, t := range f.query().Types {
		types[domain.CanonicalName(t)] = true
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Server shutdown ends the tail; the browser reconnects elsewhere.
	defer context.AfterFunc(d.streamsCtx, cancel)()
	feed, err := d.cfg.Feed.Subscribe(ctx, pc.project.ID)
	if err != nil {
		d.cfg.Log.WarnContext(ctx, "live tail: subscribing failed", "requestId", app.RequestID(ctx), "err", err)
		d.renderError(w, r, http.StatusServiceUnavailable, "Live events unavailable",
			"The pipeline (NATS) did not answer; retry shortly.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("retry: 2000\n: live\n\n"))
	flusher.Flush()

	tail := newTailFilter(f, types)
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			flusher.Flush()
		case ev, ok := <-feed:
			if !ok {
				return
			}
			n := 0
			for {
				for _, out := range tail.admit(ev) {
					data, _ := json.Marshal(out)
					if _, err := w.Write([]byte("data: " + string(data) + "\n\n")); err != nil {
						return
					}
					n++
				}
				// Drain what is already queued, then flush once.
				select {
				case ev, ok = <-feed:
					if ok {
						continue
					}
				default:
				}
				break
			}
			if n > 0 {
				flusher.Flush()
			}
			if !ok {
				return
			}
		}
	}
}

// tailFilter applies a live tail's filters. It remembers the events that
// passed the type and user filters, because outcomes carry only the id: an
// outcome is sent as a status change of an event shown, or as the whole
// event when the new status is what a status filter asks for.
//
// Tracked events and outcomes arrive on different subjects, so an outcome
// can overtake its event (the processor may publish it within a millisecond,
// and across a NATS cluster nothing orders the two). Such an outcome is held
// until its event arrives, then applied right after it.
type tailFilter struct {
	f      eventFilters
	types  map[string]bool
	events recent[*trackedEvent]
	early  recent[LiveEvent]
}

type trackedEvent struct {
	ev    LiveEvent
	shown bool
}

func newTailFilter(f eventFilters, types map[string]bool) *tailFilter {
	return &tailFilter{f: f, types: types, events: newRecent[*trackedEvent](), early: newRecent[LiveEvent]()}
}

// admit returns what the tail sends for ev: nothing, ev, or (when ev is a
// tracked event whose outcome came first) the event and its status change.
func (t *tailFilter) admit(ev LiveEvent) []LiveEvent {
	if ev.Outcome {
		te, ok := t.events.get(ev.ID)
		if !ok {
			t.early.put(ev.ID, ev)
			return nil
		}
		return t.apply(te, ev)
	}
	outcome, early := t.early.take(ev.ID)
	if len(t.types) > 0 && !t.types[domain.CanonicalName(ev.Event)] {
		return nil
	}
	if t.f.User != "" && ev.UserID != t.f.User {
		return nil
	}
	te := &trackedEvent{ev: ev, shown: t.f.Status == "" || t.f.Status == ev.Status}
	t.events.put(ev.ID, te)
	var out []LiveEvent
	if te.shown {
		out = append(out, ev)
	}
	if early {
		out = append(out, t.apply(te, outcome)...)
	}
	return out
}

// apply records an outcome of an event that passed the filters.
func (t *tailFilter) apply(te *trackedEvent, outcome LiveEvent) []LiveEvent {
	te.ev.Status, te.ev.Reason = outcome.Status, outcome.Reason
	if te.shown {
		return []LiveEvent{outcome}
	}
	if t.f.Status == outcome.Status {
		te.shown = true
		return []LiveEvent{te.ev}
	}
	return nil
}

// recent is a map of at most seenLimit entries that forgets the oldest.
type recent[V any] struct {
	m     map[string]V
	order []string
}

func newRecent[V any]() recent[V] { return recent[V]{m: map[string]V{}} }

func (r *recent[V]) get(id string) (V, bool) {
	v, ok := r.m[id]
	return v, ok
}

func (r *recent[V]) put(id string, v V) {
	if _, ok := r.m[id]; !ok {
		r.order = append(r.order, id)
	}
	r.m[id] = v
	for len(r.order) > seenLimit {
		delete(r.m, r.order[0])
		r.order = r.order[1:]
	}
}

// take removes and returns id's entry; its place in the order is left to
// age out.
func (r *recent[V]) take(id string) (V, bool) {
	v, ok := r.m[id]
	delete(r.m, id)
	return v, ok
}

// writeJSON answers the few JSON endpoints of the dashboard.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
