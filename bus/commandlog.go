package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// The command stream keeps commands by limits, and the workers trim what
// every consumer of a command's subject has acknowledged (TrimHandled).
//
// It was a work queue, where each ack removes its message. When the queue
// drains, which under a steady load is after nearly every command, the
// ack that empties the stream's last file block makes nats-server create
// a new block file and write a tombstone into it (filestore.go,
// removeMsgBlock). Under single-event load that was 7 % of boost dev's CPU
// samples (os.OpenFile alone 6 %) and 4 % of its CPU an event
// (docs/benchmarks.md). A trim removes thousands of commands at once.

// TrimInterval is how often the workers trim handled commands: the
// stream holds about that long of them on disk beyond what is pending.
const TrimInterval = 5 * time.Second

// commandStreamConfig is the command stream's configuration.
func commandStreamConfig(n Names, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.CommandStream(),
		Description: "Boost commands awaiting their handler; the workers trim those handled",
		Subjects:    []string{n.Prefix + ".commands.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// A command no handler took within a week is dropped, as the
		// work queue did.
		MaxAge: 7 * 24 * time.Hour,
		// JetStream keeps every message id of the window in memory;
		// at thousands of events a second a minute is plenty for a
		// publisher's retries, and events stay idempotent for good
		// through their ids in the read model.
		Duplicates: time.Minute,
		Replicas:   replicas,
	}
}

// ensureCommandStream creates or updates the command stream, turning a
// work queue left by an earlier version into a trimmed one once it is
// empty. While it holds commands it stays a work queue, which works as it
// did; the next start that finds it empty converts it.
func ensureCommandStream(ctx context.Context, js jetstream.JetStream, n Names, cfg jetstream.StreamConfig) error {
	_, err := js.CreateOrUpdateStream(ctx, cfg)
	if err == nil {
		return nil
	}
	s, serr := js.Stream(ctx, cfg.Name)
	if serr != nil || s.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
	}
	return convertWorkQueue(ctx, js, n, cfg)
}

// convertWorkQueue replaces the empty work-queue command stream with cfg.
// Only one process converts (a key in the upgrades bucket); the others
// wait for it. Publishers are first turned away (the stream's subjects are
// moved aside, so a publish gets no acknowledgement and the API answers
// 503), then the stream is checked empty again, deleted and created anew:
// no acknowledged command is dropped.
func convertWorkQueue(ctx context.Context, js jetstream.JetStream, n Names, cfg jetstream.StreamConfig) error {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.upper() + "_UPGRADES",
		Description: "Which process upgrades a stream", TTL: time.Minute, Storage: jetstream.FileStorage,
		Replicas: cfg.Replicas})
	if err != nil {
		return fmt.Errorf("creating the upgrades bucket: %w", err)
	}
	key := "command-stream"
	if _, err := kv.Create(ctx, key, []byte(uuid.NewString())); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("taking the command stream's upgrade: %w", err)
		}
		// Another process converts it: wait until it is done.
		for ctx.Err() == nil {
			if s, err := js.Stream(ctx, cfg.Name); err == nil && s.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
				return nil
			}
			if _, err := kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
				return ensureCommandStream(ctx, js, n, cfg)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return ctx.Err()
	}
	defer kv.Delete(context.WithoutCancel(ctx), key) //nolint:errcheck // expires anyway

	s, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", cfg.Name, err)
	}
	old := s.CachedInfo()
	if old.Config.Retention != jetstream.WorkQueuePolicy {
		return nil
	}
	if old.State.Msgs > 0 {
		slog.Info("the command stream is a work queue from an earlier version, with commands waiting; "+
			"it is converted at a start that finds it empty", "stream", cfg.Name, "commands", old.State.Msgs)
		return nil
	}
	aside := old.Config
	aside.Subjects = []string{n.Prefix + ".commands-retired.>"}
	if _, err := js.UpdateStream(ctx, aside); err != nil {
		return fmt.Errorf("moving stream %s aside: %w", cfg.Name, err)
	}
	s, err = js.Stream(ctx, cfg.Name)
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", cfg.Name, err)
	}
	if s.CachedInfo().State.Msgs > 0 {
		// A command landed before the subjects moved: keep the queue.
		if _, err := js.UpdateStream(ctx, old.Config); err != nil {
			return fmt.Errorf("restoring stream %s: %w", cfg.Name, err)
		}
		return nil
	}
	if err := js.DeleteStream(ctx, cfg.Name); err != nil {
		return fmt.Errorf("deleting work queue %s: %w", cfg.Name, err)
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
	}
	slog.Info("the command stream is now trimmed by the workers instead of a work queue", "stream", cfg.Name)
	return nil
}

// TrimHandled removes, every interval until ctx ends, the commands every
// consumer of their subject has acknowledged. A subject no consumer reads
// keeps its commands (until MaxAge), as a work queue would.
func TrimHandled(ctx context.Context, js jetstream.JetStream, stream string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := trimHandled(ctx, js, stream); err != nil && ctx.Err() == nil {
			log.Debug("trimming handled commands", "stream", stream, "err", err)
		}
	}
}

// trimHandled trims stream once and returns how many subjects it purged.
func trimHandled(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info := s.CachedInfo()
	if info.Config.Retention == jetstream.WorkQueuePolicy || info.State.Msgs == 0 {
		return 0, nil
	}
	// Read after the stream's last sequence: a consumer with nothing
	// pending then has acknowledged every one of its messages up to it.
	last := info.State.LastSeq
	type reader struct {
		filters []string
		floor   uint64
	}
	var readers []reader
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		r := reader{filters: ci.Config.FilterSubjects, floor: ci.AckFloor.Stream}
		if ci.Config.FilterSubject != "" || len(r.filters) == 0 {
			r.filters = append(r.filters, ci.Config.FilterSubject)
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			r.floor = max(r.floor, last)
		}
		readers = append(readers, r)
	}
	if err := consumers.Err(); err != nil {
		return 0, err
	}
	// Each literal subject a consumer reads is trimmed up to the lowest
	// floor of every consumer that reads it, wildcards and all.
	floors := map[string]uint64{}
	for _, r := range readers {
		for _, f := range r.filters {
			if f != "" && !strings.ContainsAny(f, "*>") {
				floors[f] = r.floor
			}
		}
	}
	for subject := range floors {
		for _, r := range readers {
			for _, f := range r.filters {
				if subjectMatches(f, subject) {
					floors[subject] = min(floors[subject], r.floor)
				}
			}
		}
	}
	purged := 0
	for subject, floor := range floors {
		if floor == 0 {
			continue
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(floor+1)); err != nil {
			return purged, fmt.Errorf("trimming %s: %w", subject, err)
		}
		purged++
	}
	return purged, nil
}

// subjectMatches reports whether filter (empty: every subject) matches
// the literal subject, with NATS's * and > wildcards.
func subjectMatches(filter, subject string) bool {
	if filter == "" || filter == ">" {
		return true
	}
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}
