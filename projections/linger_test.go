package projections_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
)

// batchSizes records how many records each transaction applied.
type batchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) Projected(_ string, n int) {
	b.mu.Lock()
	b.sizes = append(b.sizes, n)
	b.mu.Unlock()
}
func (*batchSizes) SetProjectionLag(string, int64) {}

func (b *batchSizes) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// TestRunnerLingersForAFullerBatch sends records one produce at a time,
// as a trickle of requests does: the runner keeps polling until a quarter
// of MaxBatch is in hand (or the linger ends) and applies them in one
// transaction, not one per fetch. A commit costs about as much for a few
// records as for many.
func TestRunnerLingersForAFullerBatch(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	db := env.OpenDB(t.Context())
	prefix := "l" + testenv.RandomSuffix()
	writeLog(t, env, prefix, 1, nil) // the topics
	log := history(t, domain.NewID())

	p := projections.NewEvents(prefix + ".events")
	sizes := &batchSizes{}
	r, err := projections.NewRunner(projections.RunnerConfig{DB: db, Brokers: env.Kafka.Addrs(), Group: prefix + ".group",
		Projection: p, Log: testenv.Logger(t), Metrics: sizes, MaxBatch: 4 * len(log), Linger: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	cl, err := bus.NewKafkaClient(env.Kafka.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, e := range log {
		v, _ := json.Marshal(&e)
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: prefix + ".events", Key: []byte(e.ProjectID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, 30*time.Second, "the records to be applied", func() bool { return len(sizes.get()) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := sizes.get(); len(got) != 1 || got[0] != len(log) {
		t.Errorf("applied in transactions of %v records, want one of all %d", got, len(log))
	}
}
