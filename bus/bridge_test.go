package bus_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/testenv"
)

type bridgeMetrics struct{}

func (bridgeMetrics) Bridged(int)              {}
func (bridgeMetrics) BridgeLag(string, uint64) {}

// runBridge starts a bridge; the returned func stops it as a shutdown does.
func (e *busEnv) runBridge(t *testing.T, topics bus.Topics, stage *health.Stage) (stop func()) {
	t.Helper()
	q, err := bus.NewQuarantine(e.nc, e.names)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.NewBridge(e.nc, e.names, bus.BridgeConfig{Brokers: e.env.Kafka.Addrs(), Topics: topics, BatchSize: 50,
		LeaseTTL: 2 * time.Second}, q, stage, testenv.Logger(t), bridgeMetrics{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; b.Close() }) }
	t.Cleanup(stop)
	return stop
}

// kafkaLog reads every record of topics, with each record's stream
// sequence as the bridge wrote it.
func kafkaLog(t *testing.T, env *testenv.Env, topics bus.Topics, want int) map[string][]uint64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addrs()...), kgo.ConsumeTopics(topics.All()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string][]uint64{}
	n := 0
	deadline := time.Now().Add(30 * time.Second)
	for n < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var stream string
			var seq uint64
			for _, h := range r.Headers {
				switch h.Key {
				case "jetstream-stream":
					stream = string(h.Value)
				case "jetstream-seq":
					seq, _ = strconv.ParseUint(string(h.Value), 10, 64)
				}
			}
			out[stream] = append(out[stream], seq)
			n++
		})
	}
	// Anything past what was expected is a duplicate; give it a moment.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out["extra"] = append(out["extra"], 0) })
	cancel()
	return out
}

// TestBridgeHandsOverWithoutLossOrRepeat: a holder that produced a batch
// and died before recording it leaves its lease to expire; the next
// bridge takes over, finds that batch in Kafka, and produces everything
// else once, in order. A message that is not an event is quarantined.
func TestBridgeHandsOverWithoutLossOrRepeat(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			e := newBusEnv(t, mode)
			ctx := e.ctx
			topics := bus.Topics{Tenancy: e.names.Prefix + ".tenancy", Events: e.names.Prefix + ".events", Partitions: 3, Replication: 1}
			kc, err := bus.NewKafkaClient(e.env.Kafka.Addrs())
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			if err := bus.EnsureTopics(ctx, kc, topics); err != nil {
				t.Fatal(err)
			}
			store, err := bus.NewEventStore(ctx, e.nc, e.names)
			if err != nil {
				t.Fatal(err)
			}
			publish := func(n int) {
				for i := range n {
					project := []string{domain.EventIDFor("p", "a"), domain.EventIDFor("p", "b"), domain.EventIDFor("p", "c")}[i%3]
					ev, _ := domain.NewEvent(domain.EventTracked, domain.Meta{AggregateType: domain.AggregateEvent,
						ProjectID: project}, domain.TrackedData{Event: "click", UserID: "u"})
					if err := store.Publish(ctx, e.names.TrackedSubject(project), ev); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(120)
			stage := health.NewBoard(0).Stage(health.StageBridge)
			stop := e.runBridge(t, topics, stage)
			kafkaLog(t, e.env, topics, 120)
			stop() // a clean shutdown: the position is recorded, the lease released

			// A holder that produced sequences 121–150 to Kafka, then died
			// before recording them, with its lease still on the books.
			publish(60)
			s, _ := e.js.Stream(ctx, e.names.TrackedStream())
			var recs []*kgo.Record
			for seq := uint64(121); seq <= 150; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				var ev domain.Event
				_ = json.Unmarshal(m.Data, &ev)
				recs = append(recs, &kgo.Record{Topic: topics.Events, Key: []byte(ev.ProjectID), Value: m.Data,
					Headers: []kgo.RecordHeader{{Key: "jetstream-stream", Value: []byte(e.names.TrackedStream())},
						{Key: "jetstream-seq", Value: []byte(strconv.FormatUint(seq, 10))}}})
			}
			if err := kc.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			kv, err := e.js.KeyValue(ctx, e.names.BridgeLeases())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Create(ctx, "lease."+e.names.TrackedStream(), []byte("a dead bridge")); err != nil {
				t.Fatal(err)
			}
			// And a message that is no event at all.
			if _, err := e.js.Publish(ctx, e.names.TrackedSubject("junk"), []byte("not an event")); err != nil {
				t.Fatal(err)
			}
			publish(10)

			began := time.Now()
			e.runBridge(t, topics, stage)
			got := kafkaLog(t, e.env, topics, 190)
			took := time.Since(began)
			seqs := got[e.names.TrackedStream()]
			seen := map[uint64]int{}
			for _, s := range seqs {
				seen[s]++
			}
			for seq := uint64(1); seq <= 191; seq++ {
				want := 1
				if seq == 181 {
					want = 0 // the junk message
				}
				if seen[seq] != want {
					t.Errorf("sequence %d is in Kafka %d times, want %d", seq, seen[seq], want)
				}
			}
			if len(got["extra"]) > 0 || len(seqs) != 190 {
				t.Errorf("%d records (and %d more), want 190", len(seqs), len(got["extra"]))
			}
			if took < time.Second {
				t.Errorf("took over in %s, before the dead holder's lease could expire", took)
			}
			q, _ := bus.NewQuarantine(e.nc, e.names)
			held, err := q.List(ctx, 10)
			if err != nil || len(held) != 1 || held[0].Stage != health.StageBridge || held[0].Sequence != 181 ||
				string(held[0].Data) != "not an event" {
				t.Fatalf("quarantine %+v (%v), want the junk message", held, err)
			}
			if st := stage.Snapshot(); st.Quarantined != 1 {
				t.Errorf("stage %+v, want 1 quarantined", st)
			}
		})
	}
}
