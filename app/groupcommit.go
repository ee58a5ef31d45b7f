package app

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gamify/boost/commands"
)

// groupCommit stores the tracked events of concurrent requests as one
// TrackEvents command: one command-log message, one handler run and one
// round of acks for many requests, where each request alone would cost
// all three. A request still returns only once its events are durably
// stored, with the outcome of the command they went in.
//
// A request that finds no other in flight is sent at once, so a lone
// client never waits. Otherwise the first request of a group (its leader)
// waits up to the linger for others to join, or until the group is full,
// then sends it for everyone; the requests that came meanwhile form the
// next group.
type groupCommit struct {
	send   func(ctx context.Context, cmds []commands.Command) error
	linger time.Duration

	inFlight atomic.Int64 // requests inside track
	mu       sync.Mutex
	open     *group // the group taking joiners, if any
}

// group is one command in the making.
type group struct {
	events []commands.TrackEvent
	bytes  int
	full   chan struct{} // closed when no one may join any more
	done   chan struct{} // closed once sent; err is its outcome
	err    error
}

// Group limits: a command holds at most commands.MaxTrackEvents events and
// about maxGroupBytes of their payloads, well under NATS's 1 MB message
// limit whatever JSON's escaping makes of them.
const maxGroupBytes = 128 << 10

func newGroupCommit(send func(ctx context.Context, cmds []commands.Command) error, linger time.Duration) *groupCommit {
	return &groupCommit{send: send, linger: linger}
}

// track stores events and returns once they are stored (nil) or could not
// be.
func (g *groupCommit) track(ctx context.Context, events []commands.TrackEvent) error {
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	size := payloadBytes(events)
	if g.linger <= 0 || len(events) >= commands.MaxTrackEvents || size >= maxGroupBytes || g.inFlight.Load() == 1 {
		return g.send(ctx, trackCommands(ctx, events))
	}
	grp, leader := g.join(events, size)
	if leader {
		t := time.NewTimer(g.linger)
		select {
		case <-t.C:
		case <-grp.full:
		}
		t.Stop()
		g.seal(grp)
		// Sent for everyone in it: one request going away must not take
		// the others' events with it.
		grp.err = g.send(context.WithoutCancel(ctx), trackCommands(ctx, grp.events))
		close(grp.done)
	}
	<-grp.done
	return grp.err
}

// join adds events to the open group, or opens one with the caller as its
// leader.
func (g *groupCommit) join(events []commands.TrackEvent, size int) (*group, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	grp := g.open
	if grp != nil && (len(grp.events)+len(events) > commands.MaxTrackEvents || grp.bytes+size > maxGroupBytes) {
		g.sealLocked(grp) // no room: its leader sends it now
		grp = nil
	}
	leader := grp == nil
	if leader {
		grp = &group{full: make(chan struct{}), done: make(chan struct{})}
		g.open = grp
	}
	grp.events = append(grp.events, events...)
	grp.bytes += size
	if len(grp.events) >= commands.MaxTrackEvents {
		g.sealLocked(grp)
	}
	return grp, leader
}

func (g *groupCommit) seal(grp *group) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sealLocked(grp)
}

func (g *groupCommit) sealLocked(grp *group) {
	if g.open == grp {
		g.open = nil
	}
	select {
	case <-grp.full:
	default:
		close(grp.full)
	}
}

// payloadBytes is about what events' free-form fields weigh.
func payloadBytes(events []commands.TrackEvent) int {
	n := 0
	for i := range events {
		d := &events[i].Event
		n += 512 + len(d.Properties) + len(d.Context) + len(d.Traits) + len(d.TraitsOnce) + len(d.Integrations)
	}
	return n
}

// trackCommands is events as TrackEvents commands of at most
// commands.MaxTrackEvents events and about maxGroupBytes each.
func trackCommands(ctx context.Context, events []commands.TrackEvent) []commands.Command {
	var cmds []commands.Command
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && n < commands.MaxTrackEvents {
			size += payloadBytes(events[n : n+1])
			if n > 0 && size > maxGroupBytes {
				break
			}
			n++
		}
		cmds = append(cmds, &commands.TrackEvents{Header: commands.NewHeader(CorrelationID(ctx)),
			Events: slices.Clone(events[:n])})
		events = events[n:]
	}
	return cmds
}
