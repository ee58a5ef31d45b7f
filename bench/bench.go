// Package bench is Boost's load tool (`boost bench`): it drives a running
// Boost over HTTP with N connections, single events or batches, and reports
// accepted events/s, accept latency percentiles, errors, and end-to-end lag
// (accepted → processed in the read model) from sampled events.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gamify/boost/internal/retry"
)

// Config is one run.
type Config struct {
	URL         string
	AdminToken  string
	ProjectID   string
	Mode        string // "single" or "batch"
	BatchSize   int
	Connections int
	Duration    time.Duration
	// Rate caps events/s across connections (0: as fast as possible).
	Rate float64
	// LagSamples is how many events per second are followed to the read
	// model to measure end-to-end lag.
	LagSamples int
	Out        io.Writer
}

// Result is what a run measured.
type Result struct {
	Mode            string             `json:"mode"`
	Connections     int                `json:"connections"`
	BatchSize       int                `json:"batchSize"`
	Seconds         float64            `json:"seconds"`
	Accepted        int64              `json:"accepted"`
	EventsPerSecond float64            `json:"eventsPerSecond"`
	Requests        int64              `json:"requests"`
	LatencyMs       map[string]float64 `json:"latencyMs"`
	Errors          map[string]int64   `json:"errors"`
	LagMs           map[string]float64 `json:"lagMs"`
	LagSamples      int                `json:"lagSamples"`
	LagUnfinished   int                `json:"lagUnfinished"`
	DrainSeconds    float64            `json:"drainSeconds"`
	// ProcessedPerSecond is what the pipeline kept up with: the accepted
	// events over the load and the drain after it (0 when sampled events
	// never finished).
	ProcessedPerSecond float64   `json:"processedEventsPerSecond"`
	IntervalRates      []float64 `json:"intervalEventsPerSecond"`
	IntervalRSSBytes   []float64 `json:"intervalServerRssBytes"`
	// ServerCPUSeconds is the processor time the server spent over the
	// load and the drain (its process_cpu_seconds_total), and
	// ServerCPUMicrosPerEvent that per accepted event: unlike a rate at
	// saturation, it hardly moves with what else the machine is doing, so
	// two builds compare at a fixed --rate. LoadCPUSeconds is the load
	// tool's own, which shares the machine.
	ServerCPUSeconds        float64 `json:"serverCpuSeconds"`
	ServerCPUMicrosPerEvent float64 `json:"serverCpuMicrosPerEvent"`
	LoadCPUSeconds          float64 `json:"loadCpuSeconds"`
}

// Run creates one secret key per connection (so per-key rate limits do not
// cap the run), loads the server for cfg.Duration and waits for sampled
// events to be processed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Mode != "single" && cfg.Mode != "batch" {
		return nil, fmt.Errorf("mode must be single or batch, not %q", cfg.Mode)
	}
	if cfg.Mode == "single" {
		cfg.BatchSize = 1
	}
	client := newClient(cfg.Connections)
	keys, err := createKeys(ctx, client, cfg)
	if err != nil {
		return nil, err
	}
	l := &load{cfg: cfg, client: client, keys: keys, errs: map[string]int64{},
		lats: make([][]time.Duration, cfg.Connections), samples: make(chan sample, 100_000),
		probeUser: "bench-lag-" + randomHex(6)}

	loadCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	l.pace = newPacer(cfg)
	lagDone := make(chan lagResult, 1)
	go func() { lagDone <- followLag(ctx, client, cfg, l.probeUser, l.samples) }()

	serverCPU0, loadCPU0 := serverMetric(ctx, client, cfg.URL, "process_cpu_seconds_total"), ownCPUSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.connection(loadCtx, c)
		}()
	}

	res := &Result{Mode: cfg.Mode, Connections: cfg.Connections, BatchSize: cfg.BatchSize, Errors: l.errs}
	ticker := time.NewTicker(5 * time.Second)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		l.reportIntervals(ctx, loadCtx, ticker, start, res)
	}()
	wg.Wait()
	ticker.Stop()
	stop() // the connections are done: end the reporter before reading res
	<-reported
	elapsed := time.Since(start)
	close(l.samples)
	lag := <-lagDone
	res.ServerCPUSeconds = serverMetric(ctx, client, cfg.URL, "process_cpu_seconds_total") - serverCPU0
	res.LoadCPUSeconds = ownCPUSeconds() - loadCPU0
	l.summarize(res, elapsed, lag)
	return res, nil
}

// newClient keeps enough idle connections for every bench connection to
// reuse its own.
func newClient(connections int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: connections * 2, MaxIdleConnsPerHost: connections * 2,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}, Timeout: 30 * time.Second}
}

// createKeys creates the secret key of each connection.
func createKeys(ctx context.Context, client *http.Client, cfg Config) ([]string, error) {
	keys := make([]string, cfg.Connections)
	for i := range keys {
		k, err := createKey(ctx, client, cfg, i)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
}

// pacer spaces requests so that together they send cfg.Rate events/s:
// the n-th request of the run is due n request-intervals after the
// start. A ticker would drop ticks whenever the machine is busy (and the
// run's rate with them); a schedule only runs late, and catches up.
type pacer struct {
	start    time.Time
	interval time.Duration
	n        atomic.Int64
}

// newPacer is nil when the rate is not capped.
func newPacer(cfg Config) *pacer {
	if cfg.Rate <= 0 {
		return nil
	}
	return &pacer{start: time.Now(), interval: time.Duration(float64(time.Second) * float64(cfg.BatchSize) / cfg.Rate)}
}

// wait returns when the next request is due, false if ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	due := p.start.Add(time.Duration(p.n.Add(1)-1) * p.interval)
	if d := time.Until(due); d > 0 {
		return retry.Sleep(ctx, d)
	}
	return ctx.Err() == nil
}

// load is what the connections of one run share and count into.
type load struct {
	cfg    Config
	client *http.Client
	keys   []string // one per connection
	pace   *pacer   // nil: no rate cap

	accepted, requests atomic.Int64
	errMu              sync.Mutex
	errs               map[string]int64  // by kind: timeout, network or an HTTP status
	lats               [][]time.Duration // accept latencies, per connection
	samples            chan sample       // events to follow to the read model
	probeUser          string            // the user of the followed events (payload)
	outstanding        atomic.Int64      // samples being followed
}

// connection sends requests on connection c's key until the load ends,
// paced when the rate is capped.
func (l *load) connection(loadCtx context.Context, c int) {
	prefix := randomHex(6)
	var seq int64
	lastSample := time.Now()
	for loadCtx.Err() == nil {
		if l.pace != nil && !l.pace.wait(loadCtx) {
			return
		}
		// Follow about LagSamples events per second in all, and at
		// most maxOutstanding at once.
		sampling := l.cfg.LagSamples > 0 && l.outstanding.Load() < maxOutstanding &&
			time.Since(lastSample) >= time.Duration(l.cfg.Connections)*time.Second/time.Duration(l.cfg.LagSamples)
		probe := ""
		if sampling {
			probe = l.probeUser
		}
		body, _ := payload(l.cfg, prefix, &seq, probe)
		t0 := time.Now()
		status, ids, err := send(loadCtx, l.client, l.cfg, l.keys[c], body)
		lat := time.Since(t0)
		l.requests.Add(1)
		if err != nil {
			if loadCtx.Err() != nil {
				return
			}
			l.countError(errKind(err))
			continue
		}
		if status != http.StatusAccepted {
			l.countError(strconv.Itoa(status))
			continue
		}
		l.accepted.Add(int64(len(ids)))
		l.lats[c] = append(l.lats[c], lat)
		if sampling && len(ids) > 0 {
			lastSample = time.Now()
			l.outstanding.Add(1)
			l.samples <- sample{id: ids[len(ids)-1], sentAt: t0, acceptedAt: time.Now(), done: func() { l.outstanding.Add(-1) }}
		}
	}
}

func (l *load) countError(kind string) {
	l.errMu.Lock()
	l.errs[kind]++
	l.errMu.Unlock()
}

// reportIntervals records (and prints, with cfg.Out) the accept rate and
// the server's RSS of every 5 s of the load.
func (l *load) reportIntervals(ctx, loadCtx context.Context, ticker *time.Ticker, start time.Time, res *Result) {
	prev := int64(0)
	for {
		select {
		case <-loadCtx.Done():
			return
		case <-ticker.C:
			now := l.accepted.Load()
			rate := float64(now-prev) / 5
			prev = now
			rss := serverRSS(ctx, l.client, l.cfg.URL)
			res.IntervalRates = append(res.IntervalRates, rate)
			res.IntervalRSSBytes = append(res.IntervalRSSBytes, rss)
			if l.cfg.Out != nil {
				fmt.Fprintf(l.cfg.Out, "  %6.0fs  %9.0f events/s  server RSS %6.1f MiB\n", time.Since(start).Seconds(), rate, rss/(1<<20))
			}
		}
	}
}

// summarize fills in res what the load counted over elapsed and what
// following the samples measured.
func (l *load) summarize(res *Result, elapsed time.Duration, lr lagResult) {
	var all []time.Duration
	for _, lat := range l.lats {
		all = append(all, lat...)
	}
	res.Seconds = elapsed.Seconds()
	res.Accepted = l.accepted.Load()
	res.Requests = l.requests.Load()
	res.EventsPerSecond = float64(res.Accepted) / elapsed.Seconds()
	res.LatencyMs = percentiles(all)
	res.LagMs = percentiles(lr.lags)
	res.LagSamples = len(lr.lags)
	res.LagUnfinished = lr.unfinished
	res.DrainSeconds = lr.drain.Seconds()
	if lr.unfinished == 0 && len(lr.lags) > 0 {
		res.ProcessedPerSecond = float64(res.Accepted) / (res.Seconds + res.DrainSeconds)
	}
	if res.Accepted > 0 {
		res.ServerCPUMicrosPerEvent = res.ServerCPUSeconds * 1e6 / float64(res.Accepted)
	}
}

type sample struct {
	id         string
	sentAt     time.Time // when its request went out: the server stamps it after
	acceptedAt time.Time
	done       func()
}

const maxOutstanding = 200

type lagResult struct {
	lags       []time.Duration
	unfinished int
	drain      time.Duration
}

// followLag follows the sampled events to the read model and measures
// each one's lag: the time from its 202 to the first read that shows it
// processed (or failed).
//
// The samples are the probe user's events (payload), so one list request a
// tick reads all of them still followed, however many there are. Polling
// each sample on its own was a read per sample every few milliseconds: at
// 3,000 events/s, hundreds of reads a second, a third of the API's CPU and
// of PostgreSQL's statement time, measured as if the pipeline spent it. A
// tick is 10 ms, and within 5 % of the oldest sample's age once it is older
// than 200 ms, so a long backlog is measured without the reads adding to it.
func followLag(ctx context.Context, client *http.Client, cfg Config, probeUser string, samples <-chan sample) lagResult {
	var res lagResult
	pending := map[string]sample{}
	var loadEnded, lastDone time.Time
	open := true
	for (open || len(pending) > 0) && ctx.Err() == nil {
		if open && len(pending) == 0 {
			s, ok := <-samples // nothing to poll for: wait for a sample
			if ok {
				pending[s.id] = s
			} else {
				open, loadEnded = false, time.Now()
			}
		}
	take:
		for open {
			select {
			case s, ok := <-samples:
				if !ok {
					open, loadEnded = false, time.Now()
					break take
				}
				pending[s.id] = s
			default:
				break take
			}
		}
		var oldest, oldestSent time.Time
		for id, s := range pending {
			if time.Since(s.acceptedAt) > lagGiveUp {
				res.unfinished++
				s.done()
				delete(pending, id)
				continue
			}
			if oldest.IsZero() || s.acceptedAt.Before(oldest) {
				oldest = s.acceptedAt
			}
			if oldestSent.IsZero() || s.sentAt.Before(oldestSent) {
				oldestSent = s.sentAt
			}
		}
		if len(pending) == 0 {
			continue
		}
		// The server stamps an event after its request went out; a second
		// more covers a clock step between the two.
		finished := probeFinished(ctx, client, cfg, probeUser, oldestSent.Add(-time.Second))
		now := time.Now()
		for id := range finished {
			if s, ok := pending[id]; ok {
				res.lags = append(res.lags, now.Sub(s.acceptedAt))
				lastDone = now
				s.done()
				delete(pending, id)
			}
		}
		wait := 10 * time.Millisecond
		if age := time.Since(oldest); age > 200*time.Millisecond {
			wait = min(max(wait, age/20), time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	for _, s := range pending { // the run was cancelled
		res.unfinished++
		s.done()
	}
	if !loadEnded.IsZero() && lastDone.After(loadEnded) {
		res.drain = lastDone.Sub(loadEnded)
	}
	return res
}

// lagGiveUp is how long a sample is followed before it counts as
// unfinished.
const lagGiveUp = 2 * time.Minute

// probeFinished returns the probe user's events since from that the read
// model shows processed or failed (nil when the read fails: the next tick
// reads again).
func probeFinished(ctx context.Context, client *http.Client, cfg Config, probeUser string, from time.Time) map[string]bool {
	finished := map[string]bool{}
	q := url.Values{"userId": {probeUser}, "from": {from.UTC().Format(time.RFC3339Nano)}, "limit": {"1000"}}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", cfg.URL+"/v1/projects/"+cfg.ProjectID+"/events?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return nil
		}
		var list struct {
			Data []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"data"`
			NextCursor string `json:"nextCursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil
		}
		for _, e := range list.Data {
			if e.Status == "processed" || e.Status == "failed" {
				finished[e.ID] = true
			}
		}
		if list.NextCursor == "" {
			return finished
		}
		q.Set("cursor", list.NextCursor)
	}
}

var eventNames = []string{"page_view", "product_view", "click", "cart_add", "search", "signup", "quest.completed"}

// payload builds one request body: every event has a messageId, a user
// among 10,000, and small properties.
//
// With a probe user, the last event of the body is that user's: it is the
// one followed to the read model (followLag).
func payload(cfg Config, prefix string, seq *int64, probeUser string) ([]byte, string) {
	var b bytes.Buffer
	one := func(last bool) string {
		*seq++
		mid := prefix + "-" + strconv.FormatInt(*seq, 36)
		name := eventNames[*seq%int64(len(eventNames))]
		user := "user-" + strconv.FormatInt(*seq%10_000, 10)
		if last && probeUser != "" {
			user = probeUser
		}
		fmt.Fprintf(&b, `{"event":%q,"userId":%q,"messageId":%q,"properties":{"path":"/p/%d","n":%d}}`,
			name, user, mid, *seq%100, *seq)
		return mid
	}
	if cfg.Mode == "single" {
		mid := one(true)
		return b.Bytes(), mid
	}
	b.WriteString(`{"batch":[`)
	first := ""
	for i := range cfg.BatchSize {
		if i > 0 {
			b.WriteByte(',')
		}
		m := one(i == cfg.BatchSize-1)
		if i == 0 {
			first = m
		}
	}
	fmt.Fprintf(&b, `],"sentAt":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	return b.Bytes(), first
}

func send(ctx context.Context, client *http.Client, cfg Config, key string, body []byte) (int, []string, error) {
	path := "/v1/events/track"
	if cfg.Mode == "batch" {
		path = "/v1/events/batch"
	}
	req, err := http.NewRequestWithContext(ctx, "POST", cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, nil, nil
	}
	if cfg.Mode == "single" {
		var r struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &r)
		return resp.StatusCode, []string{r.ID}, nil
	}
	var r struct {
		Accepted []struct {
			ID string `json:"id"`
		} `json:"accepted"`
	}
	_ = json.Unmarshal(raw, &r)
	ids := make([]string, len(r.Accepted))
	for i, a := range r.Accepted {
		ids[i] = a.ID
	}
	return resp.StatusCode, ids, nil
}

func createKey(ctx context.Context, client *http.Client, cfg Config, i int) (string, error) {
	body := fmt.Sprintf(`{"name":"bench %d","type":"secret"}`, i)
	req, err := http.NewRequestWithContext(ctx, "POST", cfg.URL+"/v1/projects/"+cfg.ProjectID+"/api-keys", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("creating bench key: %w", err)
	}
	defer resp.Body.Close()
	var k struct {
		Key string `json:"key"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || json.Unmarshal(raw, &k) != nil || k.Key == "" {
		return "", fmt.Errorf("creating bench key: %d %s", resp.StatusCode, raw)
	}
	return k.Key, nil
}

func serverRSS(ctx context.Context, client *http.Client, base string) float64 {
	return serverMetric(ctx, client, base, "process_resident_memory_bytes")
}

// serverMetric reads one unlabelled metric from the server's /metrics (0
// when it cannot).
func serverMetric(ctx context.Context, client *http.Client, base, name string) float64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return metricValue(string(raw), name)
}

// metricValue finds name's sample in Prometheus text exposition.
func metricValue(exposition, name string) float64 {
	for line := range strings.Lines(exposition) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func percentiles(ds []time.Duration) map[string]float64 {
	out := map[string]float64{}
	if len(ds) == 0 {
		return out
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := min(len(ds)-1, int(q*float64(len(ds))))
		return float64(ds[i].Microseconds()) / 1000
	}
	out["p50"], out["p90"], out["p99"], out["max"] = at(0.50), at(0.90), at(0.99), float64(ds[len(ds)-1].Microseconds())/1000
	return out
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "network"
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Print writes a human summary.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "\nmode %s, %d connections, batch %d, %.1fs\n", r.Mode, r.Connections, r.BatchSize, r.Seconds)
	fmt.Fprintf(w, "accepted        %d events (%d requests), %.0f events/s\n", r.Accepted, r.Requests, r.EventsPerSecond)
	fmt.Fprintf(w, "accept latency  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		r.LatencyMs["p50"], r.LatencyMs["p90"], r.LatencyMs["p99"], r.LatencyMs["max"])
	fmt.Fprintf(w, "end-to-end lag  p50 %.1f ms  p99 %.1f ms  max %.1f ms  (%d samples, %d unfinished; drained %.1fs after load)\n",
		r.LagMs["p50"], r.LagMs["p99"], r.LagMs["max"], r.LagSamples, r.LagUnfinished, r.DrainSeconds)
	fmt.Fprintf(w, "processed       %.0f events/s (accepted over the load and the drain)\n", r.ProcessedPerSecond)
	fmt.Fprintf(w, "server CPU      %.1f s over the load and the drain, %.0f µs an accepted event (the load tool: %.1f s)\n",
		r.ServerCPUSeconds, r.ServerCPUMicrosPerEvent, r.LoadCPUSeconds)
	if len(r.Errors) == 0 {
		fmt.Fprintf(w, "errors          none\n")
	} else {
		fmt.Fprintf(w, "errors          %v\n", r.Errors)
	}
}
