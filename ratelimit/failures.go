package ratelimit

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// Failures throttles guessing: each client address may fail a credential
// check (the admin token, a dashboard sign-in) Burst times, then one more
// time per Every. While an address is over its allowance every attempt
// from it is refused, right or wrong, until the allowance has grown back;
// an address that never failed is never slowed. It is per process: with
// several API processes an address gets the allowance of each.
type Failures struct {
	burst int
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*allowance
}

type allowance struct {
	left float64
	at   time.Time
}

// maxTrackedClients bounds memory: past it the addresses whose allowance
// has grown back whole are forgotten (they would be unaffected anyway).
const maxTrackedClients = 100_000

// NewFailures returns a limiter allowing burst failures, then one per
// every.
func NewFailures(burst int, every time.Duration) *Failures {
	return &Failures{burst: max(burst, 1), every: max(every, time.Millisecond), now: time.Now, clients: map[string]*allowance{}}
}

// ClientAddress is the address a request came from: the peer's IP. A
// proxy in front hides it, and then every client shares the allowance of
// the proxy.
func ClientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Blocked reports whether client is over its allowance, and when it may
// try again.
func (f *Failures) Blocked(client string) (retryAfter time.Duration, blocked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.clients[client]
	if !ok {
		return 0, false
	}
	f.refill(a)
	if a.left >= 1 {
		return 0, false
	}
	return time.Duration((1 - a.left) * float64(f.every)), true
}

// Failed records a failed attempt by client.
func (f *Failures) Failed(client string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.clients[client]
	if !ok {
		if len(f.clients) >= maxTrackedClients {
			f.forgetRecovered()
		}
		a = &allowance{left: float64(f.burst), at: f.now()}
		f.clients[client] = a
	}
	f.refill(a)
	a.left = max(a.left-1, 0)
}

func (f *Failures) refill(a *allowance) {
	now := f.now()
	a.left = math.Min(float64(f.burst), a.left+float64(now.Sub(a.at))/float64(f.every))
	a.at = now
}

func (f *Failures) forgetRecovered() {
	for k, a := range f.clients {
		f.refill(a)
		if a.left >= float64(f.burst) {
			delete(f.clients, k)
		}
	}
}
