package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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

// ensureCommandStream creates or updates the command stream, replacing a
// work queue left by an earlier version (upgradeCommandStream), and puts
// back the commands a conversion carried over. Converting and putting back
// run in one process at a time; the others wait for it and look again.
func ensureCommandStream(ctx context.Context, js jetstream.JetStream, n Names, cfg jetstream.StreamConfig) error {
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err == nil {
		if _, err := js.Stream(ctx, carryStream(n)); errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
	} else if s, serr := js.Stream(ctx, cfg.Name); serr != nil || s.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
	}
	ran, err := underUpgradeLock(ctx, js, n, cfg.Replicas, func(ctx context.Context) error {
		return upgradeCommandStream(ctx, js, n, cfg)
	})
	if err != nil || ran {
		return err
	}
	return ensureCommandStream(ctx, js, n, cfg)
}

// carryStream holds the commands a conversion took out of the work queue
// until the new stream has them; the carriedSubject and carriedMsgID
// headers keep the subject and message id each goes back with.
func carryStream(n Names) string { return n.CommandStream() + "_CARRY" }

const (
	carriedSubject = "Boost-Carried-Subject"
	carriedMsgID   = "Boost-Carried-Msg-Id"
)

// upgradeLockTTL bounds how long a dead upgrader holds the others back;
// a live one renews its key every third of it.
const upgradeLockTTL = 30 * time.Second

// underUpgradeLock runs fn holding the upgrades bucket's key for the
// command stream, renewed while fn runs (fn's context ends if it cannot
// be). If another process holds it, it waits until that one lets go and
// reports that fn did not run.
func underUpgradeLock(ctx context.Context, js jetstream.JetStream, n Names, replicas int,
	fn func(context.Context) error,
) (bool, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.upper() + "_UPGRADES",
		Description: "Which process upgrades a stream", TTL: upgradeLockTTL, Storage: jetstream.FileStorage,
		Replicas: replicas})
	if err != nil {
		return false, fmt.Errorf("creating the upgrades bucket: %w", err)
	}
	const key = "command-stream"
	rev, err := kv.Create(ctx, key, []byte(uuid.NewString()))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("taking the command stream's upgrade: %w", err)
		}
		for ctx.Err() == nil {
			if _, err := kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
				return false, nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return false, ctx.Err()
	}
	held, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(upgradeLockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
			}
			next, err := kv.Update(held, key, []byte("renewed"), rev)
			if err != nil {
				lost(fmt.Errorf("the command stream's upgrade lock was lost: %w", err))
				return
			}
			rev = next
		}
	}()
	err = fn(held)
	lost(nil)
	<-renewed
	if derr := kv.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev)); derr != nil && err == nil {
		slog.Warn("releasing the command stream's upgrade lock", "err", derr)
	}
	if err == nil && context.Cause(held) != nil && !errors.Is(context.Cause(held), context.Canceled) {
		err = context.Cause(held)
	}
	return true, err
}

// upgradeCommandStream replaces the work-queue command stream with cfg and
// puts the carried commands back. Publishers are turned away first (the
// queue's subjects are moved aside, so a publish gets no acknowledgement
// and the API answers 503); the commands waiting in it are copied to the
// carry stream, and only then is it deleted, if it is still the queue that
// was read (its creation time), and the new one created. Every step can be
// run again after a crash: a copy repeats under the same message ids,
// which the carry stream drops within its hour-long window, and an
// acknowledged command is never only in a stream about to be deleted. A
// command put back more than once (a crash between putting back and
// deleting the carry stream, after the new stream's one-minute window) is
// handled again, which the handlers absorb; put-back commands may be
// handled after commands accepted since, as commands of different types
// and parallel workers are anyway.
func upgradeCommandStream(ctx context.Context, js jetstream.JetStream, n Names, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("reading stream %s: %w", cfg.Name, err)
	}
	if err == nil && s.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
		queue := s.CachedInfo()
		aside := queue.Config
		aside.Subjects = []string{n.Prefix + ".commands-retired.>"}
		if _, err := js.UpdateStream(ctx, aside); err != nil {
			return fmt.Errorf("moving stream %s aside: %w", cfg.Name, err)
		}
		if s, err = js.Stream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("reading stream %s: %w", cfg.Name, err)
		}
		carried, err := carry(ctx, js, n, s)
		if err != nil {
			return err
		}
		if s, err = js.Stream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("reading stream %s: %w", cfg.Name, err)
		}
		if now := s.CachedInfo(); now.Config.Retention != jetstream.WorkQueuePolicy || !now.Created.Equal(queue.Created) {
			return fmt.Errorf("stream %s changed while it was converted", cfg.Name)
		}
		if err := js.DeleteStream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("deleting work queue %s: %w", cfg.Name, err)
		}
		slog.Info("the command stream is now trimmed by the workers instead of a work queue", "stream", cfg.Name,
			"commandsCarriedOver", carried)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
	}
	return restoreCarried(ctx, js, n)
}

// carry copies the commands waiting in the work queue s to the carry
// stream, each with its subject in a header.
func carry(ctx context.Context, js jetstream.JetStream, n Names, s jetstream.Stream) (int, error) {
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return 0, nil
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: carryStream(n),
		Description: "Commands carried from the old work queue to the new command stream",
		Subjects:    []string{n.Prefix + ".commands-carry.>"}, Storage: jetstream.FileStorage,
		Duplicates: time.Hour, Replicas: s.CachedInfo().Config.Replicas}); err != nil {
		return 0, fmt.Errorf("creating stream %s: %w", carryStream(n), err)
	}
	carried := 0
	for seq := state.FirstSeq; seq <= state.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // handled already
		}
		if err != nil {
			return carried, fmt.Errorf("reading command %d: %w", seq, err)
		}
		msg := &nats.Msg{Subject: fmt.Sprintf("%s.commands-carry.%d", n.Prefix, seq), Data: m.Data,
			Header: nats.Header{}}
		for k, v := range m.Header {
			msg.Header[k] = v
		}
		msg.Header.Set(carriedSubject, m.Subject)
		if id := m.Header.Get(jetstream.MsgIDHeader); id != "" {
			msg.Header.Set(carriedMsgID, id)
		}
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("carry-%d", seq))); err != nil {
			return carried, fmt.Errorf("carrying command %d: %w", seq, err)
		}
		carried++
	}
	return carried, nil
}

// restoreCarried publishes the carried commands to the command stream
// under their own subjects and message ids, then deletes the carry stream.
func restoreCarried(ctx context.Context, js jetstream.JetStream, n Names) error {
	s, err := js.Stream(ctx, carryStream(n))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", carryStream(n), err)
	}
	state := s.CachedInfo().State
	for seq := state.FirstSeq; seq <= state.LastSeq && state.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil // put back by another process
		}
		if err != nil {
			return fmt.Errorf("reading carried command %d: %w", seq, err)
		}
		msg := &nats.Msg{Subject: m.Header.Get(carriedSubject), Data: m.Data, Header: nats.Header{}}
		for k, v := range m.Header {
			if k != carriedSubject && k != carriedMsgID && k != jetstream.MsgIDHeader {
				msg.Header[k] = v
			}
		}
		if id := m.Header.Get(carriedMsgID); id != "" {
			msg.Header.Set(jetstream.MsgIDHeader, id)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("restoring carried command %d: %w", seq, err)
		}
	}
	if err := js.DeleteStream(ctx, carryStream(n)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("deleting stream %s: %w", carryStream(n), err)
	}
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
	type reader struct {
		filters []string
		floor   uint64
	}
	var readers []reader
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		// The acknowledged floor alone: with nothing pending it is the
		// last sequence the consumer handed out. NumPending is no proof
		// that a stored command was handed out; the server counts it
		// after acknowledging the publish.
		r := reader{filters: ci.Config.FilterSubjects, floor: ci.AckFloor.Stream}
		if ci.Config.FilterSubject != "" || len(r.filters) == 0 {
			r.filters = append(r.filters, ci.Config.FilterSubject)
		}
		readers = append(readers, r)
	}
	if err := consumers.Err(); err != nil {
		return 0, err
	}
	// Each literal subject a consumer reads is trimmed up to the lowest
	// floor of every consumer that reads it, wildcards and all (an empty
	// filter reads every subject), matched as nats-server matches them.
	floors := map[string]uint64{}
	for _, r := range readers {
		for _, f := range r.filters {
			if server.IsValidLiteralSubject(f) {
				floors[f] = r.floor
			}
		}
	}
	for subject := range floors {
		for _, r := range readers {
			for _, f := range r.filters {
				if f == "" || server.SubjectMatchesFilter(subject, f) {
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
