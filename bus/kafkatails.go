package bus

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// producerTails answers the retry of a batch that landed just before the
// embedded broker was killed.
//
// An idempotent producer whose request got no answer sends the same batch
// again (same producer id, epoch and sequence), and the broker must say
// "already have it" rather than append it twice. Kafka can, even after a
// crash, because it rebuilds each producer's last sequences from the log.
// kfake keeps them in memory and writes them only on an orderly shutdown:
// after a SIGKILL it has none, takes the retry as a producer's first batch
// and appends it again. The bridge's records would then be in the log twice.
//
// So, on a data directory, the embedded broker reads the batches at the tail
// of every partition before it takes a produce, and answers a produce of one
// of them with its offset, as Kafka does. The tail is enough: a batch whose
// answer the crash lost was in flight when the process died, so it is among
// the last appended.
type producerTails struct {
	mu      sync.Mutex
	ready   bool
	landed  map[tailKey][]landedBatch // the last batches of each producer on each partition
	topicOf map[[16]byte]string       // topic ids, for produce requests v13+
}

type tailKey struct {
	topic     string
	partition int32
	producer  int64
}

type landedBatch struct {
	epoch      int16
	firstSeq   int32
	numRecords int32
	offset     int64
}

// tailRecords is how far back from its end each partition is read: far
// more than the requests a producer has in flight.
const tailRecords = 10_000

// producerWindow is how many batches of a producer on a partition are
// kept, as Kafka keeps (and as many as a producer may have in flight).
const producerWindow = 5

// guardRetries makes c answer retried batches from its log (see
// producerTails). Produces wait (answered with a retriable error) until the
// tails are read.
func guardRetries(ctx context.Context, c *kfake.Cluster) error {
	t := &producerTails{landed: map[tailKey][]landedBatch{}, topicOf: map[[16]byte]string{}}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp, handled := t.answer(req.(*kmsg.ProduceRequest))
		if handled {
			c.KeepControl()
		}
		return resp, nil, handled
	})
	if err := t.read(ctx, c.ListenAddrs()); err != nil {
		return err
	}
	t.mu.Lock()
	t.ready = true
	t.mu.Unlock()
	return nil
}

// read loads the tail of every partition.
func (t *producerTails) read(ctx context.Context, addrs []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return fmt.Errorf("kafka: reading producer tails: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("kafka: reading producer tails: listing topics: %w", err)
	}
	if len(topics) == 0 {
		return nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics.Names()...)
	if err != nil {
		return fmt.Errorf("kafka: reading producer tails: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Names()...)
	if err != nil {
		return fmt.Errorf("kafka: reading producer tails: %w", err)
	}
	for _, td := range topics.Sorted() {
		t.topicOf[td.ID] = td.Topic
		for _, p := range td.Partitions.Sorted() {
			start, _ := starts.Lookup(td.Topic, p.Partition)
			end, _ := ends.Lookup(td.Topic, p.Partition)
			from := max(start.Offset, end.Offset-tailRecords)
			for from < end.Offset {
				next, err := t.fetch(ctx, cl, td.Topic, td.ID, p.Partition, from)
				if err != nil {
					return err
				}
				if next <= from {
					break
				}
				from = next
			}
		}
	}
	return nil
}

// fetch reads the batches from offset on and returns the offset after the
// last one read.
func (t *producerTails) fetch(ctx context.Context, cl *kgo.Client, topic string, id [16]byte, partition int32, offset int64) (int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 64 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 64<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("kafka: reading the tail of %s/%d: %w", topic, partition, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("kafka: reading the tail of %s/%d: %w", topic, partition, err)
	}
	next := offset
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("kafka: reading the tail of %s/%d: %w", topic, partition, err)
			}
			for b := rp.RecordBatches; ; {
				h, size, ok := readBatchHeader(b)
				if !ok {
					break
				}
				b = b[size:]
				if end := h.firstOffset + int64(h.lastOffsetDelta) + 1; end > next {
					next = end
				}
				if h.producer < 0 || h.control {
					continue
				}
				k := tailKey{topic, partition, h.producer}
				w := append(t.landed[k], landedBatch{h.epoch, h.firstSeq, h.numRecords, h.firstOffset})
				if len(w) > producerWindow {
					w = w[len(w)-producerWindow:]
				}
				t.landed[k] = w
			}
		}
	}
	return next, nil
}

// answer handles a produce that repeats a batch of the tails: such a
// batch is answered with the offset it landed at. Any other partition of
// the same request is answered with a retriable error that says nothing
// was written (the client sends it again, alone, and the broker takes it).
// Before the tails are read, every produce is answered so.
func (t *producerTails) answer(req *kmsg.ProduceRequest) (kmsg.Response, bool) {
	if req.Acks == 0 {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ready && len(t.landed) == 0 {
		return nil, false
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = req.Version
	repeats := false
	for _, rt := range req.Topics {
		topic := rt.Topic
		if req.Version >= 13 {
			topic = t.topicOf[rt.TopicID]
		}
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.NotEnoughReplicas.Code
			if h, _, ok := readBatchHeader(rp.Records); ok && t.ready && h.producer >= 0 {
				k := tailKey{topic, rp.Partition, h.producer}
				if off, ok := t.repeated(k, h); ok {
					sp.ErrorCode, sp.BaseOffset, repeats = 0, off, true
					slog.Info("kafka: a producer's retry of a batch in the log was answered with its offset",
						"topic", topic, "partition", rp.Partition, "producer", h.producer, "sequence", h.firstSeq,
						"records", h.numRecords, "offset", off)
				} else {
					// A new batch of this producer: kfake keeps its
					// sequences from here on.
					delete(t.landed, k)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if t.ready && !repeats {
		return nil, false
	}
	return resp, true
}

// repeated reports whether h is a batch the tails hold, and its offset.
func (t *producerTails) repeated(k tailKey, h batchHeader) (int64, bool) {
	for _, l := range t.landed[k] {
		if l.epoch == h.epoch && l.firstSeq == h.firstSeq && l.numRecords == h.numRecords {
			return l.offset, true
		}
	}
	return 0, false
}

type batchHeader struct {
	firstOffset     int64
	lastOffsetDelta int32
	control         bool
	producer        int64
	epoch           int16
	firstSeq        int32
	numRecords      int32
}

// readBatchHeader reads the header of the record batch (format v2) at the
// start of b and its whole size; ok is false if b does not hold a whole
// batch.
func readBatchHeader(b []byte) (h batchHeader, size int, ok bool) {
	const headerSize = 61
	if len(b) < headerSize || b[16] != 2 {
		return h, 0, false
	}
	size = 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
	if size < headerSize || size > len(b) {
		return h, 0, false
	}
	return batchHeader{
		firstOffset:     int64(binary.BigEndian.Uint64(b[0:8])),
		lastOffsetDelta: int32(binary.BigEndian.Uint32(b[23:27])),
		control:         binary.BigEndian.Uint16(b[21:23])&0x20 != 0,
		producer:        int64(binary.BigEndian.Uint64(b[43:51])),
		epoch:           int16(binary.BigEndian.Uint16(b[51:53])),
		firstSeq:        int32(binary.BigEndian.Uint32(b[53:57])),
		numRecords:      int32(binary.BigEndian.Uint32(b[57:61])),
	}, size, true
}

// tailReadTimeout bounds reading the tails at start.
const tailReadTimeout = time.Minute
