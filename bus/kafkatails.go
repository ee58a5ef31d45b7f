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
// after a SIGKILL it has only those of its last orderly shutdown, takes the
// retry as a producer's first batch and appends it again. The bridge's
// records would then be in the log twice.
//
// So, on a data directory, the embedded broker reads the batches at the tail
// of every partition before it takes a produce, and answers a produce of one
// of them with its offset, as Kafka does. The tail is enough: a batch whose
// answer the crash lost was in flight when the process died, so it is among
// the last appended.
type producerTails struct {
	mu      sync.Mutex
	ready   bool
	readyAt time.Time
	// producers are the producers the tails hold, and those whose batch was
	// refused, by topic name, partition and producer id.
	producers map[tailKey]*producerState
	topicOf   map[[16]byte]string // topic ids, for produce requests v13+
	// early are the batches refused before the tails were read, by the
	// topic as the request named it (a v13+ request names it by id).
	early map[earlyKey]batchHeader
}

type tailKey struct {
	topic     string
	partition int32
	producer  int64
}

type earlyKey struct {
	topic     string
	topicID   [16]byte
	partition int32
	producer  int64
}

// producerState is what the broker knows of one producer on one partition
// until kfake knows it again: its last batches in the log, and the batch
// it must take next.
//
// Only the batch that continues the producer's sequence may reach kfake.
// A later one, sent while an earlier one was refused or in flight, would
// be the producer's first batch as far as kfake knows: it would take it,
// then refuse the earlier one as out of order, and the producer, starting
// its sequences over, would send the later one again.
type producerState struct {
	landed []landedBatch
	epoch  int16
	next   int32
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

// guardFor is how long after the tails are read the guard stays: a
// producer that was waiting for the broker retries within seconds of its
// return; one that died with it has another id now.
const guardFor = 2 * time.Minute

// guardRetries makes c answer retried batches from its log (see
// producerTails). Produces wait (answered with a retriable error) until the
// tails are read.
func guardRetries(ctx context.Context, c *kfake.Cluster) error {
	t := &producerTails{early: map[earlyKey]batchHeader{}}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp, handled, done := t.answer(req.(*kmsg.ProduceRequest), time.Now())
		switch {
		case done:
			c.DropControl()
		case handled:
			c.KeepControl()
		}
		return resp, nil, handled
	})
	producers, topicOf, err := readTails(ctx, c.ListenAddrs())
	if err != nil {
		return err
	}
	t.start(producers, topicOf, time.Now())
	return nil
}

// start takes the tails read and the batches refused meanwhile: a
// producer the tails do not hold must next send the lowest of its refused
// batches.
func (t *producerTails) start(producers map[tailKey]*producerState, topicOf map[[16]byte]string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, h := range t.early {
		topic := k.topic
		if name, ok := topicOf[k.topicID]; ok && topic == "" {
			topic = name
		}
		tk := tailKey{topic, k.partition, k.producer}
		if _, ok := producers[tk]; !ok {
			producers[tk] = &producerState{epoch: h.epoch, next: h.firstSeq}
		}
	}
	t.producers, t.topicOf, t.early = producers, topicOf, nil
	t.ready, t.readyAt = true, now
}

// readTails reads the tail of every partition: each producer's last
// batches, and the topics' ids.
func readTails(ctx context.Context, addrs []string) (map[tailKey]*producerState, map[[16]byte]string, error) {
	producers, topicOf := map[tailKey]*producerState{}, map[[16]byte]string{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: reading producer tails: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: reading producer tails: listing topics: %w", err)
	}
	if len(topics) == 0 {
		return producers, topicOf, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics.Names()...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: reading producer tails: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Names()...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: reading producer tails: %w", err)
	}
	for _, td := range topics.Sorted() {
		topicOf[td.ID] = td.Topic
		for _, p := range td.Partitions.Sorted() {
			start, _ := starts.Lookup(td.Topic, p.Partition)
			end, _ := ends.Lookup(td.Topic, p.Partition)
			from := max(start.Offset, end.Offset-tailRecords)
			for from < end.Offset {
				next, err := fetchTail(ctx, cl, producers, td.Topic, td.ID, p.Partition, from)
				if err != nil {
					return nil, nil, err
				}
				if next <= from {
					break
				}
				from = next
			}
		}
	}
	return producers, topicOf, nil
}

// fetchTail reads the batches from offset on and returns the offset after the
// last one read.
func fetchTail(ctx context.Context, cl *kgo.Client, producers map[tailKey]*producerState, topic string, id [16]byte, partition int32, offset int64) (int64, error) {
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
				st := producers[k]
				if st == nil {
					st = &producerState{}
					producers[k] = st
				}
				st.landed = append(st.landed, landedBatch{h.epoch, h.firstSeq, h.numRecords, h.firstOffset})
				if len(st.landed) > producerWindow {
					st.landed = st.landed[len(st.landed)-producerWindow:]
				}
				st.epoch, st.next = h.epoch, h.firstSeq+h.numRecords
			}
		}
	}
	return next, nil
}

// answer handles a produce that repeats a batch of the tails, or that
// holds a batch its producer may not send yet (see producerState): the
// repeat is answered with the offset it landed at, every other partition
// of the request with a retriable error that says nothing was written.
// Before the tails are read, every produce is answered so. Any other
// produce is left to kfake. done says the guard is over: its time is up,
// or kfake knows every producer it held again.
func (t *producerTails) answer(req *kmsg.ProduceRequest, now time.Time) (resp kmsg.Response, handled, done bool) {
	if req.Acks == 0 {
		return nil, false, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ready && (len(t.producers) == 0 || now.Sub(t.readyAt) > guardFor) {
		return nil, false, true
	}
	type part struct {
		key    tailKey
		h      batchHeader
		offset int64 // of a repeat; -1 for a batch kfake may take, -2 for one it may not
	}
	parts := make([][]part, len(req.Topics))
	hold := !t.ready
	for i, rt := range req.Topics {
		topic := rt.Topic
		if req.Version >= 13 {
			topic = t.topicOf[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			p := part{offset: -1}
			h, _, ok := readBatchHeader(rp.Records)
			switch {
			case !ok || h.producer < 0:
			case !t.ready:
				p.offset = -2
				k := earlyKey{rt.Topic, rt.TopicID, rp.Partition, h.producer}
				if e, seen := t.early[k]; !seen || h.epoch > e.epoch || (h.epoch == e.epoch && h.firstSeq < e.firstSeq) {
					t.early[k] = h
				}
			default:
				p.key, p.h = tailKey{topic, rp.Partition, h.producer}, h
				if st := t.producers[p.key]; st != nil {
					if off, ok := st.repeated(h); ok {
						p.offset = off
						slog.Info("kafka: a producer's retry of a batch in the log was answered with its offset",
							"topic", topic, "partition", rp.Partition, "producer", h.producer, "sequence", h.firstSeq,
							"records", h.numRecords, "offset", off)
					} else if h.epoch < st.epoch || (h.epoch == st.epoch && h.firstSeq != st.next) {
						p.offset = -2
					}
				}
			}
			hold = hold || p.offset != -1
			parts[i] = append(parts[i], p)
		}
	}
	if !hold {
		// kfake takes every batch, and knows their producers from here on.
		for _, ps := range parts {
			for _, p := range ps {
				delete(t.producers, p.key)
			}
		}
		return nil, false, false
	}
	out := req.ResponseKind().(*kmsg.ProduceResponse)
	out.Version = req.Version
	for i, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for j, rp := range rt.Partitions {
			p := parts[i][j]
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			if p.offset >= 0 {
				sp.BaseOffset = p.offset
			} else {
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
			}
			if p.offset == -1 && t.ready && p.h.producer >= 0 {
				// Refused only for the company it came in: its producer
				// must send it next.
				if prev := t.producers[p.key]; prev != nil {
					prev.epoch, prev.next = p.h.epoch, p.h.firstSeq
				} else {
					t.producers[p.key] = &producerState{epoch: p.h.epoch, next: p.h.firstSeq}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		out.Topics = append(out.Topics, st)
	}
	return out, true, false
}

// repeated reports whether h is one of the producer's batches in the log,
// and its offset.
func (st *producerState) repeated(h batchHeader) (int64, bool) {
	for _, l := range st.landed {
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
