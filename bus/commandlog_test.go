package bus

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func testNames(t *testing.T, js jetstream.JetStream) Names {
	t.Helper()
	n := Names{Prefix: "trim" + uuid.NewString()[:8]}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = js.DeleteStream(ctx, n.CommandStream())
		_ = js.DeleteKeyValue(ctx, n.upper()+"_UPGRADES")
	})
	return n
}

// oldWorkQueue creates the command stream as earlier versions did, a work
// queue, under names of the test's own.
func oldWorkQueue(ctx context.Context, t *testing.T, js jetstream.JetStream) Names {
	t.Helper()
	n := testNames(t, js)
	t.Cleanup(func() {
		for _, s := range []string{n.EventStream(), n.TrackedStream(), n.QuarantineStream(), carryStream(n)} {
			_ = js.DeleteStream(context.Background(), s)
		}
	})
	old := commandStreamConfig(n, 1)
	old.Retention = jetstream.WorkQueuePolicy
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	return n
}

func publishCommands(ctx context.Context, t *testing.T, js jetstream.JetStream, subject string, count int) {
	t.Helper()
	for i := range count {
		if _, err := js.Publish(ctx, subject, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// handle has a durable consumer of subject fetch count commands and
// acknowledge the first acked of them.
func handle(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, subject string, count, acked int) {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: sanitizeName(subject),
		FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(count, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		if i < acked {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		i++
	}
	if i != count {
		t.Fatalf("fetched %d of %s, want %d", i, subject, count)
	}
}

func subjectCounts(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) map[string]uint64 {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// TestTrimHandledRemovesOnlyWhatEveryReaderAcknowledged: a trim removes a
// subject's commands up to the lowest acknowledged floor of the consumers
// that read it, wildcard consumers included, and leaves a subject no
// consumer reads alone.
func TestTrimHandledRemovesOnlyWhatEveryReaderAcknowledged(t *testing.T) {
	for mode, js := range readerNATS(t) {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n := testNames(t, js)
			if err := ensureCommandStream(ctx, js, n, commandStreamConfig(n, 1)); err != nil {
				t.Fatal(err)
			}
			stream := n.CommandStream()
			a, b, c := n.CommandSubject("A"), n.CommandSubject("B"), n.CommandSubject("C")
			publishCommands(ctx, t, js, a, 10)
			publishCommands(ctx, t, js, b, 10)
			publishCommands(ctx, t, js, c, 5)
			handle(ctx, t, js, stream, a, 10, 6) // four still being handled
			handle(ctx, t, js, stream, b, 10, 10)

			if _, err := trimHandled(ctx, js, stream); err != nil {
				t.Fatal(err)
			}
			got := subjectCounts(ctx, t, js, stream)
			if got[a] != 4 || got[b] != 0 || got[c] != 5 {
				t.Fatalf("after a trim: %s %d (want 4), %s %d (want 0), %s %d (want 5, no consumer reads it)",
					a, got[a], b, got[b], c, got[c])
			}

			// A consumer of every command that has acknowledged nothing
			// holds every subject back.
			if _, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "EVERYTHING",
				FilterSubject: n.Prefix + ".commands.>", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
				t.Fatal(err)
			}
			publishCommands(ctx, t, js, b, 3)
			handle(ctx, t, js, stream, b, 3, 3)
			if _, err := trimHandled(ctx, js, stream); err != nil {
				t.Fatal(err)
			}
			if got := subjectCounts(ctx, t, js, stream); got[b] != 3 || got[a] != 4 {
				t.Fatalf("with a reader of every subject that acknowledged nothing: %v; want %s 3, %s 4", got, b, a)
			}
		})
	}
}

// TestEnsureStreamsConvertsAWorkQueue: the work-queue command stream of an
// earlier version is replaced by the trimmed one, and the commands waiting
// in it are in the new one after, under their subjects, with their data and
// message ids; one handled before is not. Commands left in the carry
// stream by a conversion that died half way are put back at the next start.
func TestEnsureStreamsConvertsAWorkQueue(t *testing.T) {
	for mode, js := range readerNATS(t) {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n := oldWorkQueue(ctx, t, js)
			track, usage := n.CommandSubject("TrackEvents"), n.CommandSubject("RecordKeyUsage")
			publish := func(subject, data, id string) {
				t.Helper()
				if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte(data)}, jetstream.WithMsgID(id)); err != nil {
					t.Fatal(err)
				}
			}
			publish(track, "handled", "c1")
			handle(ctx, t, js, n.CommandStream(), track, 1, 1)
			publish(track, "waiting track", "c2")
			publish(usage, "waiting usage", "c3")

			if err := EnsureStreams(ctx, js, n, StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			s, err := js.Stream(ctx, n.CommandStream())
			if err != nil {
				t.Fatal(err)
			}
			if r := s.CachedInfo().Config.Retention; r != jetstream.LimitsPolicy {
				t.Fatalf("the work queue is still %v", r)
			}
			got := map[string]string{}
			for seq := s.CachedInfo().State.FirstSeq; seq <= s.CachedInfo().State.LastSeq; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				got[m.Subject+" "+string(m.Data)] = m.Header.Get(jetstream.MsgIDHeader)
			}
			want := map[string]string{track + " waiting track": "c2", usage + " waiting usage": "c3"}
			if len(got) != len(want) || got[track+" waiting track"] != "c2" || got[usage+" waiting usage"] != "c3" {
				t.Fatalf("commands after the conversion (subject data: message id): %v, want %v", got, want)
			}
			if _, err := js.Stream(ctx, carryStream(n)); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Fatalf("the carry stream after the conversion: %v", err)
			}

			// A conversion that died after carrying: the next start puts
			// the carried command back.
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: carryStream(n),
				Subjects: []string{n.Prefix + ".commands-carry.>"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: n.Prefix + ".commands-carry.9", Data: []byte("carried"),
				Header: nats.Header{carriedSubject: []string{usage}}}); err != nil {
				t.Fatal(err)
			}
			if err := EnsureStreams(ctx, js, n, StreamOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := subjectCounts(ctx, t, js, n.CommandStream()); got[usage] != 2 || got[track] != 1 {
				t.Fatalf("commands after restoring the carried one: %v", got)
			}
		})
	}
}

// TestConcurrentStartsConvertOnce: processes starting together convert
// the work queue once; every waiting command is in the new stream once.
func TestConcurrentStartsConvertOnce(t *testing.T) {
	for mode, js := range readerNATS(t) {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			n := oldWorkQueue(ctx, t, js)
			subject := n.CommandSubject("TrackEvents")
			for i := range 50 {
				if _, err := js.Publish(ctx, subject, []byte(strconv.Itoa(i)), jetstream.WithMsgID("c"+strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			errs := make(chan error, 3)
			for range 3 {
				go func() { errs <- EnsureStreams(ctx, js, n, StreamOptions{}) }()
			}
			for range 3 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			s, err := js.Stream(ctx, n.CommandStream())
			if err != nil {
				t.Fatal(err)
			}
			if r, msgs := s.CachedInfo().Config.Retention, s.CachedInfo().State.Msgs; r != jetstream.LimitsPolicy || msgs != 50 {
				t.Fatalf("after three concurrent starts: %v with %d commands, want limits with 50", r, msgs)
			}
		})
	}
}
