package app

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
)

// sent records what a groupCommit sends, and can hold sends back.
type sent struct {
	mu    sync.Mutex
	cmds  [][]commands.Command
	err   error
	delay time.Duration
}

func (s *sent) send(_ context.Context, cmds []commands.Command) error {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmds)
	return s.err
}

func (s *sent) events() (commandsSent, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, batch := range s.cmds {
		for _, c := range batch {
			commandsSent++
			events += len(c.(*commands.TrackEvents).Events)
		}
	}
	return commandsSent, events
}

func tracked(n int, props string) []commands.TrackEvent {
	out := make([]commands.TrackEvent, n)
	for i := range out {
		out[i] = commands.TrackEvent{EventID: domain.NewID(), Event: domain.TrackedData{Event: "click",
			Properties: json.RawMessage(props)}}
	}
	return out
}

// TestGroupCommitGroupsConcurrentRequests: concurrent requests share
// commands, every event is sent exactly once, and each request returns
// its command's outcome only after it was sent.
func TestGroupCommitGroupsConcurrentRequests(t *testing.T) {
	for _, fail := range []bool{false, true} {
		s := &sent{delay: time.Millisecond}
		if fail {
			s.err = errors.New("JetStream unavailable")
		}
		g := newGroupCommit(s.send, 5*time.Millisecond)
		const requests = 200
		var wg sync.WaitGroup
		errs := make(chan error, requests)
		for range requests {
			wg.Go(func() { errs <- g.track(context.Background(), tracked(1, `{}`)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if (err != nil) != fail {
				t.Fatalf("a request returned %v (the send failing: %v)", err, fail)
			}
		}
		cmds, events := s.events()
		if events != requests {
			t.Fatalf("%d events sent, want %d", events, requests)
		}
		if cmds >= requests/2 {
			t.Errorf("%d commands for %d concurrent requests: not grouped", cmds, requests)
		}
	}
}

// TestGroupCommitLimits: a lone request is sent at once, a group never
// holds more than a command's worth of events or bytes, and big requests
// are split into commands that fit.
func TestGroupCommitLimits(t *testing.T) {
	s := &sent{}
	g := newGroupCommit(s.send, time.Hour) // a linger no test could wait out
	if err := g.track(context.Background(), tracked(1, `{}`)); err != nil {
		t.Fatal(err)
	}
	if cmds, _ := s.events(); cmds != 1 {
		t.Fatalf("a lone request waited for company: %d commands sent", cmds)
	}

	// Full groups are sent without waiting out the linger.
	s = &sent{}
	g = newGroupCommit(s.send, time.Hour)
	var wg sync.WaitGroup
	for range 4 * commands.MaxTrackEvents {
		wg.Go(func() {
			if err := g.track(context.Background(), tracked(1, `{}`)); err != nil {
				t.Error(err)
			}
		})
	}
	// Only the first request can have gone alone: at least three full
	// groups form behind it, and none waits out the linger.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n := s.events(); n >= 3*commands.MaxTrackEvents || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, n := s.events(); n < 3*commands.MaxTrackEvents {
		t.Fatalf("full groups were not sent at once: %d events sent", n)
	}
	// The last group is short of full: close it for the test to end.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(10 * time.Millisecond):
			g.mu.Lock()
			if g.open != nil {
				g.sealLocked(g.open)
			}
			g.mu.Unlock()
		}
	}
	s.mu.Lock()
	for _, batch := range s.cmds {
		for _, c := range batch {
			if n := len(c.(*commands.TrackEvents).Events); n > commands.MaxTrackEvents {
				t.Errorf("a command of %d events", n)
			}
		}
	}
	s.mu.Unlock()

	big := `{"text":"` + strings.Repeat("x", 20<<10) + `"}`
	cmds := trackCommands(context.Background(), tracked(30, big))
	total := 0
	for _, c := range cmds {
		te := c.(*commands.TrackEvents)
		total += len(te.Events)
		if payloadBytes(te.Events) > maxGroupBytes && len(te.Events) > 1 {
			t.Errorf("a command of %d bytes", payloadBytes(te.Events))
		}
	}
	if total != 30 || len(cmds) < 2 {
		t.Errorf("30 big events went as %d events in %d commands", total, len(cmds))
	}
}
