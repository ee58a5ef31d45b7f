package chaos

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// behaviouralEvents are sent with the publishable key.
var behaviouralEvents = []string{"page_view", "product_view", "click", "search", "cart_add", "cart_update",
	"signup", "login", "chaos.custom"}

// Identity pools: several users and anonymous visitors.
const (
	userPool      = 24
	anonymousPool = 32
	// timestampSpread is how far back event timestamps go, so the
	// roll-ups get several hourly buckets (and now and then two days).
	timestampSpread = 4 * time.Hour
	// failingCurrency is well-formed but unknown to the processor: those
	// purchases end failed and must not count as revenue.
	failingCurrency = "ZZZ"
)

// generator makes the load's events and requests, deterministically for a
// seed (timestamps are relative to the wall clock).
type generator struct {
	rng    *rand.Rand
	prefix string
	seq    int
	now    func() time.Time
}

func newGenerator(seed, stream uint64, prefix string) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, stream)), prefix: prefix, now: time.Now}
}

func (g *generator) nextID() string {
	g.seq++
	return fmt.Sprintf("%s-%06d", g.prefix, g.seq)
}

func (g *generator) timestamp() time.Time {
	back := time.Duration(g.rng.Int64N(int64(timestampSpread)))
	return g.now().Add(-back).UTC().Truncate(time.Millisecond)
}

func (g *generator) user() string { return fmt.Sprintf("user-%02d", g.rng.IntN(userPool)+1) }

func (g *generator) anonymous() string { return fmt.Sprintf("anon-%02d", g.rng.IntN(anonymousPool)+1) }

// behavioural is a client-safe event by a user, a visitor, or both.
func (g *generator) behavioural() offer {
	o := offer{MessageID: g.nextID(), Event: behaviouralEvents[g.rng.IntN(len(behaviouralEvents))], Timestamp: g.timestamp()}
	switch r := g.rng.Float64(); {
	case r < 0.45:
		o.UserID = g.user()
	case r < 0.65:
		o.UserID, o.AnonymousID = g.user(), g.anonymous()
	default:
		o.AnonymousID = g.anonymous()
	}
	return o
}

// purchase is a secret-key commerce event; a few use a currency the
// processor fails.
func (g *generator) purchase() offer {
	o := offer{MessageID: g.nextID(), Event: "purchase", UserID: g.user(), Timestamp: g.timestamp(),
		Amount: 100 + g.rng.Int64N(49_900), Currency: "EUR"}
	if g.rng.Float64() < 0.08 {
		o.Currency = failingCurrency
	}
	return o
}

// request picks the next request: mostly publishable batches, some secret
// batches mixing purchases in, and single tracks of both kinds.
func (g *generator) request(publishable, secret string) request {
	switch r := g.rng.Float64(); {
	case r < 0.50:
		return request{Path: pathBatch, Key: publishable, Events: g.many(5+g.rng.IntN(36), 0)}
	case r < 0.65:
		return request{Path: pathBatch, Key: secret, Events: g.many(5+g.rng.IntN(16), 0.3)}
	case r < 0.90:
		return request{Path: pathTrack, Key: publishable, Events: []offer{g.behavioural()}}
	default:
		return request{Path: pathTrack, Key: secret, Events: []offer{g.purchase()}}
	}
}

func (g *generator) many(n int, purchases float64) []offer {
	out := make([]offer, n)
	for i := range out {
		if g.rng.Float64() < purchases {
			out[i] = g.purchase()
		} else {
			out[i] = g.behavioural()
		}
	}
	return out
}
