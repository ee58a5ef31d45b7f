package chaos

import (
	"sync"
	"sync/atomic"
	"time"
)

// offer is one event the load offered to the API, and what became of it.
type offer struct {
	MessageID   string
	Event       string
	UserID      string
	AnonymousID string
	Timestamp   time.Time
	Amount      int64  // purchases only
	Currency    string // purchases only

	// AcceptedID is the event id of the first 2xx answer; "" while the
	// API has not accepted the event (or never did).
	AcceptedID string
	// Refusal is the 4xx (other than 429) that made the client drop it.
	Refusal string
}

// ledger records every offered event by messageId. The load writes it;
// the sampler reads the accepted count; verification reads a copy.
type ledger struct {
	mu        sync.Mutex
	offers    map[string]*offer
	order     []string
	conflicts []string
	accepted  atomic.Int64
}

func newLedger() *ledger { return &ledger{offers: map[string]*offer{}} }

// offer records events the first time they are sent.
func (l *ledger) offer(events []offer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		if _, ok := l.offers[e.MessageID]; ok {
			continue
		}
		c := e
		l.offers[e.MessageID] = &c
		l.order = append(l.order, e.MessageID)
	}
}

// accept records a 2xx answer for messageID. A second answer with another
// id is a conflict: a retry must get the id of the first.
func (l *ledger) accept(messageID, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.offers[messageID]
	if !ok {
		return
	}
	switch {
	case o.AcceptedID == "":
		o.AcceptedID = id
		l.accepted.Add(1)
	case o.AcceptedID != id:
		l.conflicts = append(l.conflicts, messageID+": "+o.AcceptedID+" then "+id)
	}
}

// refuse records the 4xx answer that dropped messageID.
func (l *ledger) refuse(messageID, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o, ok := l.offers[messageID]; ok && o.AcceptedID == "" && o.Refusal == "" {
		o.Refusal = reason
	}
}

// acceptedCount is how many distinct events the API has accepted so far.
func (l *ledger) acceptedCount() int64 { return l.accepted.Load() }

// acceptedIDs is the set of accepted event ids.
func (l *ledger) acceptedIDs() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make(map[string]bool, len(l.order))
	for _, m := range l.order {
		if id := l.offers[m].AcceptedID; id != "" {
			ids[id] = true
		}
	}
	return ids
}

// snapshot copies the offers in the order they were made, and the id
// conflicts seen.
func (l *ledger) snapshot() ([]offer, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]offer, len(l.order))
	for i, m := range l.order {
		out[i] = *l.offers[m]
	}
	return out, append([]string(nil), l.conflicts...)
}
