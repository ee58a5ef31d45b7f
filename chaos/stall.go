package chaos

import (
	"context"
	"sync"
	"time"
)

// sample is one look at the pipeline: how many events the read model
// shows and how many the API had accepted, at a time since the load began.
type sample struct {
	At       time.Duration
	Visible  int64
	Accepted int64
}

// longestStall is the longest interval in which the number of visible
// events did not grow while accepted events were waiting to show: it opens
// at the first sample with events waiting after the last growth and closes
// at the next growth, when nothing waits any more, or at the last sample.
func longestStall(samples []sample) time.Duration {
	var longest, since time.Duration
	waiting := false
	for i, s := range samples {
		grew := i > 0 && s.Visible > samples[i-1].Visible
		if waiting && (grew || s.Accepted <= s.Visible) {
			longest = max(longest, s.At-since)
			waiting = false
		}
		if !waiting && s.Accepted > s.Visible {
			waiting, since = true, s.At
		}
	}
	if waiting {
		longest = max(longest, samples[len(samples)-1].At-since)
	}
	return longest
}

// sampler records samples every interval until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	stop    context.CancelFunc
	done    chan struct{}
}

// startSampler samples visible (the read model's count) and accepted
// (the ledger's) every interval from now on.
func startSampler(ctx context.Context, interval time.Duration, visible func(context.Context) (int64, error), accepted func() int64) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{stop: cancel, done: make(chan struct{})}
	begin := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			acc := accepted()
			qctx, qcancel := context.WithTimeout(ctx, interval*4)
			n, err := visible(qctx)
			qcancel()
			if err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, sample{At: time.Since(begin), Visible: n, Accepted: acc})
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the samples.
func (s *sampler) finish() []sample {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}
