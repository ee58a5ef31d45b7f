package bus

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEmbeddedKafkaAnswersARetryAfterACrash produces three batches through
// franz-go's idempotent producer, abandons the broker without closing it
// (kfake then saves nothing, as after a SIGKILL), starts another on the
// same data directory and sends the very requests again, as a producer does
// whose answers the crash lost. Kafka answers such a batch with the offset
// it landed at; kfake alone would append it a second time.
func TestEmbeddedKafkaAnswersARetryAfterACrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	const topic = "boost.events"

	k1, err := StartEmbeddedKafka(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sent []*kmsg.ProduceRequest
	k1.cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := *r.(*kmsg.ProduceRequest)
		req.Topics = slices.Clone(req.Topics)
		for i := range req.Topics {
			req.Topics[i].Partitions = slices.Clone(req.Topics[i].Partitions)
			for j := range req.Topics[i].Partitions {
				p := &req.Topics[i].Partitions[j]
				p.Records = slices.Clone(p.Records)
			}
		}
		mu.Lock()
		sent = append(sent, &req)
		mu.Unlock()
		return nil, nil, false
	})
	producer, err := kgo.NewClient(kgo.SeedBrokers(k1.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(producer).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kgo.Record{
		{Topic: topic, Partition: 0, Value: []byte("a")},
		{Topic: topic, Partition: 0, Value: []byte("b")},
		{Topic: topic, Partition: 1, Value: []byte("c")},
	} {
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	producer.Close()
	mu.Lock()
	a, b, c := sent[0], sent[1], sent[2]
	mu.Unlock()
	t.Cleanup(k1.Close) // after k2's Close: k1 is the crashed process

	k2, err := StartEmbeddedKafka(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k2.Close)
	raw, err := kgo.NewClient(kgo.SeedBrokers(k2.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	ends := func() []int64 {
		t.Helper()
		listed, err := kadm.NewClient(raw).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, p := range []int32{0, 1} {
			o, _ := listed.Lookup(topic, p)
			out = append(out, o.Offset)
		}
		return out
	}
	answers := func(req *kmsg.ProduceRequest) map[int32]kmsg.ProduceResponseTopicPartition {
		t.Helper()
		resp, err := req.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]kmsg.ProduceResponseTopicPartition{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[rp.Partition] = rp
			}
		}
		return out
	}
	if got := ends(); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("end offsets after the restart = %v, want [2 1]", got)
	}

	// b again: already at offset 1.
	if p := answers(b)[0]; p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("the repeat of b: error %v, offset %d; want none, 1", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if got := ends(); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("end offsets after b again = %v, want [2 1] (appended twice)", got)
	}

	// A batch past the next one is refused until the next one comes.
	if p := answers(&kmsg.ProduceRequest{Version: b.Version, Acks: b.Acks, TimeoutMillis: b.TimeoutMillis,
		Topics: []kmsg.ProduceRequestTopic{withRecords(b.Topics[0], withSequence(b.Topics[0].Partitions[0].Records, 3))}})[0]; p.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("a batch past the next: error %v, offset %d; want %v", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, kerr.NotEnoughReplicas)
	}
	if got := ends(); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("end offsets after a batch past the next = %v, want [2 1]", got)
	}

	// a again, beside a new batch for partition 1 (c's next sequence): a
	// is answered with its offset, the new batch with a retriable error
	// that says nothing was written.
	next := withSequence(c.Topics[0].Partitions[0].Records, 1)
	mixed := *a
	mixed.Topics = []kmsg.ProduceRequestTopic{a.Topics[0]}
	mixed.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{a.Topics[0].Partitions[0], c.Topics[0].Partitions[0]}
	mixed.Topics[0].Partitions[1].Records = next
	got := answers(&mixed)
	if p := got[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("the repeat of a: error %v, offset %d; want none, 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := got[1]; p.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("the new batch beside a repeat: error %v, want %v", kerr.ErrorForCode(p.ErrorCode), kerr.NotEnoughReplicas)
	}
	if got := ends(); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("end offsets after the mixed request = %v, want [2 1]", got)
	}

	// The new batch alone is taken, and from then on kfake keeps that
	// partition's sequences itself.
	alone := *c
	alone.Topics = []kmsg.ProduceRequestTopic{c.Topics[0]}
	alone.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{c.Topics[0].Partitions[0]}
	alone.Topics[0].Partitions[0].Records = next
	if p := answers(&alone)[1]; p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("the new batch: error %v, offset %d; want none, 1", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := answers(&alone)[1]; p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("the new batch again: error %v, offset %d; want none, 1 (kfake's own window)", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if got := ends(); !slices.Equal(got, []int64{2, 2}) {
		t.Fatalf("end offsets at the end = %v, want [2 2]", got)
	}
}

// withRecords is a copy of a request's topic with its one partition's
// records replaced.
func withRecords(rt kmsg.ProduceRequestTopic, records []byte) kmsg.ProduceRequestTopic {
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rt.Partitions[0]}
	rt.Partitions[0].Records = records
	return rt
}

// withSequence returns a copy of a record batch with another first
// sequence number (and its checksum made again).
func withSequence(batch []byte, seq int32) []byte {
	b := slices.Clone(batch)
	binary.BigEndian.PutUint32(b[53:57], uint32(seq))
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestReadBatchHeaderRejectsWhatIsNotAWholeBatch(t *testing.T) {
	whole := make([]byte, 70)
	whole[16] = 2
	binary.BigEndian.PutUint32(whole[8:12], 58)
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"whole", whole, true},
		{"cut short", whole[:69], false},
		{"header only", whole[:61], false},
		{"empty", nil, false},
		{"magic 1", append(append(append([]byte{}, whole[:16]...), 1), whole[17:]...), false},
	} {
		if _, _, ok := readBatchHeader(tc.b); ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
		}
	}
}

// Until the tails are read, the broker cannot tell a retry from a new
// batch, so every produce is answered with a retriable error that says
// nothing was written; the lowest batch refused is the one its producer
// must send first once they are read.
func TestProduceWaitsForTheTails(t *testing.T) {
	tails := &producerTails{early: map[earlyKey]batchHeader{}}
	batch := func(seq int32) []byte {
		b := make([]byte, 61)
		binary.BigEndian.PutUint32(b[8:12], 49)
		b[16] = 2
		binary.BigEndian.PutUint64(b[43:51], 7) // producer 7, epoch 0
		binary.BigEndian.PutUint32(b[53:57], uint32(seq))
		binary.BigEndian.PutUint32(b[57:61], 1)
		return b
	}
	produce := func(seq int32) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "boost.events"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch(seq)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	refused := func(req *kmsg.ProduceRequest) bool {
		resp, handled, _ := tails.answer(req, time.Now())
		return handled && resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode == kerr.NotEnoughReplicas.Code
	}
	for _, seq := range []int32{4, 3} {
		if !refused(produce(seq)) {
			t.Fatalf("sequence %d before the tails were read went to the broker", seq)
		}
	}
	tails.start(map[tailKey]*producerState{}, map[[16]byte]string{}, time.Now())
	if !refused(produce(4)) {
		t.Fatal("sequence 4 went to the broker before 3, which was refused first")
	}
	if refused(produce(3)) {
		t.Fatal("sequence 3, refused first, was refused again")
	}
	if _, handled, done := tails.answer(produce(4), time.Now()); handled || !done {
		t.Fatalf("with every producer known to kfake again: handled %v, done %v; want the guard over", handled, done)
	}
}
