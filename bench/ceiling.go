package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
)

// Ceiling is the bare-bones program doing the irreducible work of
// accepting an event, so that Boost's figures can be read as a fraction
// of what this machine can do at all: decode the request's JSON, publish
// each event to a JetStream file stream (asynchronously, with its
// messageId for de-duplication, as Boost's command stream has), wait for
// the acks, answer 202 with an id per event. No keys, no validation, no
// commands, no read models. It speaks just enough of Boost's API for
// Run to drive it: keys are made up, and every event reads as processed
// (lag is not measured against it).
type Ceiling struct {
	URL string

	ns   *bus.EmbeddedNATS
	nc   *nats.Conn
	srv  *http.Server
	dir  string
	seq  atomic.Int64
	js   jetstream.JetStream
	done chan struct{}
}

// StartCeiling starts a ceiling on a free loopback port, its JetStream
// store in a temporary directory. Stop removes it.
func StartCeiling(ctx context.Context) (*Ceiling, error) {
	dir, err := os.MkdirTemp("", "boost-ceiling-")
	if err != nil {
		return nil, err
	}
	c := &Ceiling{dir: dir, done: make(chan struct{})}
	if c.ns, err = bus.StartEmbeddedNATS(filepath.Join(dir, "nats"), "127.0.0.1:0"); err != nil {
		c.Stop()
		return nil, fmt.Errorf("ceiling: starting NATS: %w", err)
	}
	if c.nc, err = c.ns.Connect("boost-ceiling"); err != nil {
		c.Stop()
		return nil, fmt.Errorf("ceiling: connecting to NATS: %w", err)
	}
	if c.js, err = jetstream.New(c.nc); err != nil {
		c.Stop()
		return nil, err
	}
	if _, err = c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "CEILING", Subjects: []string{"ceiling.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Duplicates: time.Minute}); err != nil {
		c.Stop()
		return nil, fmt.Errorf("ceiling: creating the stream: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Stop()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/track", c.track)
	mux.HandleFunc("POST /v1/events/batch", c.batch)
	mux.HandleFunc("POST /v1/projects/{project}/api-keys", func(w http.ResponseWriter, _ *http.Request) {
		ceilingJSON(w, http.StatusCreated, map[string]string{"key": "ceiling-key-" + strconv.FormatInt(c.seq.Add(1), 10)})
	})
	mux.HandleFunc("GET /v1/projects/{project}/events/{id}", func(w http.ResponseWriter, _ *http.Request) {
		ceilingJSON(w, http.StatusOK, map[string]string{"status": "processed"})
	})
	mux.Handle("GET /metrics", promhttp.Handler())
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	c.URL = "http://" + ln.Addr().String()
	go func() {
		defer close(c.done)
		_ = c.srv.Serve(ln)
	}()
	return c, nil
}

// Stop shuts the ceiling down and removes its store.
func (c *Ceiling) Stop() {
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.srv.Shutdown(ctx)
		cancel()
		<-c.done
	}
	if c.nc != nil {
		c.nc.Close()
	}
	if c.ns != nil {
		c.ns.Shutdown()
	}
	_ = os.RemoveAll(c.dir)
}

// ceilingEvent is what the ceiling reads of an event: what Boost needs
// at the very least (its name, its user, its idempotency id), the rest
// kept as raw bytes.
type ceilingEvent struct {
	Event      string          `json:"event"`
	UserID     string          `json:"userId"`
	MessageID  string          `json:"messageId"`
	Properties json.RawMessage `json:"properties"`
}

func (c *Ceiling) track(w http.ResponseWriter, r *http.Request) {
	var e ceilingEvent
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, domain.MaxBodyBytes)).Decode(&e); err != nil {
		ceilingJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ids, err := c.publish(r.Context(), []ceilingEvent{e})
	if err != nil {
		ceilingJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	ceilingJSON(w, http.StatusAccepted, map[string]string{"id": ids[0], "status": "accepted"})
}

func (c *Ceiling) batch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Batch []ceilingEvent `json:"batch"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, domain.MaxBodyBytes)).Decode(&req); err != nil {
		ceilingJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ids, err := c.publish(r.Context(), req.Batch)
	if err != nil {
		ceilingJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	type item struct {
		Index int    `json:"index"`
		ID    string `json:"id"`
	}
	accepted := make([]item, len(ids))
	for i, id := range ids {
		accepted[i] = item{i, id}
	}
	ceilingJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "accepted": accepted, "rejected": []any{}})
}

// publish appends each event as one message, all in flight at once, and
// returns their ids once every ack is in.
func (c *Ceiling) publish(ctx context.Context, events []ceilingEvent) ([]string, error) {
	acks := make([]jetstream.PubAckFuture, len(events))
	ids := make([]string, len(events))
	for i := range events {
		body, err := json.Marshal(&events[i])
		if err != nil {
			return nil, err
		}
		ids[i] = domain.NewID()
		msg := &nats.Msg{Subject: "ceiling.events", Data: body, Header: nats.Header{}}
		if events[i].MessageID != "" {
			msg.Header.Set(jetstream.MsgIDHeader, events[i].MessageID)
		}
		if acks[i], err = c.js.PublishMsgAsync(msg); err != nil {
			return nil, err
		}
	}
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return nil, errors.New("ceiling: no ack within 10 s")
		}
	}
	return ids, nil
}

func ceilingJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Comparison is a run beside the ceiling's run with the same load.
type Comparison struct {
	Boost   *Result `json:"boost"`
	Ceiling *Result `json:"ceiling"`
	// AcceptedRatio is Boost's accepted events/s over the ceiling's.
	AcceptedRatio float64 `json:"acceptedRatio"`
}

// Compare pairs a run with the ceiling's.
func Compare(boost, ceiling *Result) Comparison {
	c := Comparison{Boost: boost, Ceiling: ceiling}
	if ceiling != nil && ceiling.EventsPerSecond > 0 {
		c.AcceptedRatio = boost.EventsPerSecond / ceiling.EventsPerSecond
	}
	return c
}

// Print writes the two runs' figures side by side with their ratio.
func (c Comparison) Print(w io.Writer) {
	b, ce := c.Boost, c.Ceiling
	fmt.Fprintf(w, "\nmode %s, %d connections, batch %d, %.1fs\n", b.Mode, b.Connections, b.BatchSize, b.Seconds)
	fmt.Fprintf(w, "%-16s %14s %14s %8s\n", "", "boost", "ceiling", "ratio")
	row := func(name string, x, y float64, unit string) {
		ratio := "—"
		if y > 0 {
			ratio = fmt.Sprintf("%.2f×", x/y)
		}
		fmt.Fprintf(w, "%-16s %11.1f %-2s %11.1f %-2s %8s\n", name, x, unit, y, unit, ratio)
	}
	row("accepted ev/s", b.EventsPerSecond, ce.EventsPerSecond, "")
	row("processed ev/s", b.ProcessedPerSecond, ce.EventsPerSecond, "")
	row("accept p50", b.LatencyMs["p50"], ce.LatencyMs["p50"], "ms")
	row("accept p99", b.LatencyMs["p99"], ce.LatencyMs["p99"], "ms")
	row("accept max", b.LatencyMs["max"], ce.LatencyMs["max"], "ms")
	row("server CPU/event", b.ServerCPUMicrosPerEvent, ce.ServerCPUMicrosPerEvent, "µs")
	fmt.Fprintf(w, "end-to-end lag   p50 %.1f ms  p99 %.1f ms  max %.1f ms  (%d samples, %d unfinished; drained %.1fs after load)\n",
		b.LagMs["p50"], b.LagMs["p99"], b.LagMs["max"], b.LagSamples, b.LagUnfinished, b.DrainSeconds)
	for name, r := range map[string]*Result{"boost": b, "ceiling": ce} {
		if len(r.Errors) > 0 {
			fmt.Fprintf(w, "errors (%s)  %v\n", name, r.Errors)
		}
	}
}
