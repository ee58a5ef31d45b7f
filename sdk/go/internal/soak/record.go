package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// record is one event as sent, with the server ids reported for it. The
// Node sender writes the same JSON.
type record struct {
	SDK         string          `json:"sdk"`
	MessageID   string          `json:"messageId"`
	Event       string          `json:"event"`
	UserID      string          `json:"userId,omitempty"`
	AnonymousID string          `json:"anonymousId,omitempty"`
	Properties  json.RawMessage `json:"properties"`
	Timestamp   string          `json:"timestamp"`
	IDs         []string        `json:"ids"` // distinct server ids reported, in order
}

func writeRecords(path string, recs []*record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readRecords(path string) ([]*record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []*record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		r := new(record)
		if err := json.Unmarshal(sc.Bytes(), r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// wire records every request the SDK makes, to check after the run that
// failures really happened and that no retry came before the server's
// Retry-After.
type wire struct {
	base http.RoundTripper

	mu       sync.Mutex
	statuses map[string]int // "202", "429", "503", "net"
	early    []string       // retries sent before Retry-After had elapsed
	notAfter time.Time      // no request may start before this
	raStatus int
}

func newWire(base http.RoundTripper) *wire {
	return &wire{base: base, statuses: map[string]int{}}
}

// slack absorbs timer granularity when comparing with Retry-After.
const slack = 25 * time.Millisecond

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	w.mu.Lock()
	if !w.notAfter.IsZero() && start.Add(slack).Before(w.notAfter) {
		w.early = append(w.early, fmt.Sprintf("request at %s, %v before the end of the Retry-After of a %d",
			start.Format("15:04:05.000"), w.notAfter.Sub(start).Round(time.Millisecond), w.raStatus))
	}
	w.notAfter = time.Time{}
	w.mu.Unlock()

	resp, err := w.base.RoundTrip(req)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.statuses["net"]++
		return nil, err
	}
	w.statuses[strconv.Itoa(resp.StatusCode)]++
	if ra := resp.Header.Get("Retry-After"); ra != "" && resp.StatusCode >= 400 {
		if secs, perr := strconv.Atoi(strings.TrimSpace(ra)); perr == nil && secs > 0 {
			w.notAfter = time.Now().Add(time.Duration(secs) * time.Second)
			w.raStatus = resp.StatusCode
		}
	}
	return resp, nil
}

func (w *wire) snapshot() (map[string]int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := make(map[string]int, len(w.statuses))
	for k, v := range w.statuses {
		s[k] = v
	}
	return s, append([]string(nil), w.early...)
}
