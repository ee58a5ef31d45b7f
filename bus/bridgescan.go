package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/domain"
)

// landed returns the sequences of stream after `after` whose records
// Kafka already has. Each partition holds a stream's records in sequence
// order, so it is read back from its end until a record of stream at or
// before `after` shows up (or the partition's start).
func (b *Bridge) landed(ctx context.Context, stream string, after uint64) (map[uint64]bool, error) {
	adm := kadm.NewClient(b.kafka)
	topics := b.topics.All()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the end of %v: %w", topics, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the start of %v: %w", topics, err)
	}
	out := map[uint64]bool{}
	var scanErr error
	ends.Each(func(end kadm.ListedOffset) {
		start, _ := starts.Lookup(end.Topic, end.Partition)
		if scanErr != nil || end.Offset <= start.Offset {
			return
		}
		window := int64(4 * b.cfg.BatchSize)
		for to := end.Offset; to > start.Offset; window *= 2 {
			from := max(start.Offset, to-window)
			recs, err := b.readRange(ctx, end.Topic, end.Partition, from, to)
			if err != nil {
				scanErr = err
				return
			}
			boundary := false
			for _, r := range recs {
				if b.recordStream(r) != stream {
					continue
				}
				if seq := seqOf(r); seq > after {
					out[seq] = true
				} else {
					boundary = true
				}
			}
			if boundary {
				return
			}
			to = from
		}
	})
	return out, scanErr
}

// readRange reads the records of one partition from offset from up to
// (not including) to.
func (b *Bridge) readRange(ctx context.Context, topic string, partition int32, from, to int64) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.Brokers...), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}))
	if err != nil {
		return nil, fmt.Errorf("reading %s/%d: %w", topic, partition, err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for {
		fetches := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			return nil, fmt.Errorf("reading %s/%d from %d to %d: %w", topic, partition, from, to, rctx.Err())
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("reading %s/%d: %w", topic, partition, ferr)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset < to {
				out = append(out, r)
			}
			if r.Offset >= to-1 {
				done = true
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.HighWatermark <= to && len(p.Records) > 0 && p.Records[len(p.Records)-1].Offset+1 >= p.HighWatermark {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}

// recordStream is the stream a record came from: its header, or, for
// records bridges wrote before they set it, what the event's type says.
func (b *Bridge) recordStream(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == headerStream {
			return string(h.Value)
		}
	}
	for _, h := range r.Headers {
		if h.Key == headerEventType {
			switch string(h.Value) {
			case domain.EventTracked, domain.EventRejected, domain.UserIdentified, domain.EventProcessed,
				domain.EventFailed, domain.APIKeyUsed:
				return b.names.TrackedStream()
			}
			return b.names.EventStream()
		}
	}
	return ""
}
