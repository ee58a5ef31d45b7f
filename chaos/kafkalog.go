package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// trackedType is the domain event whose records must appear once per id.
const trackedType = "EventTracked"

// countTracked reads topic from the start to its current end and counts
// the EventTracked records of project per event id (the record header
// event-id, else the JSON envelope's id).
func countTracked(ctx context.Context, brokers []string, topic, project string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka: %w", err)
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	remaining := map[int32]int64{} // partition → end offset still to reach
	start := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
			start[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	counts := map[string]int{}
	if len(remaining) == 0 {
		return counts, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %d partitions not read to the end: %w", topic, len(remaining), ctx.Err())
		}
		for _, fe := range fetches.Errors() {
			if fe.Err != nil && !errors.Is(fe.Err, context.Canceled) {
				return nil, fmt.Errorf("reading %s partition %d: %w", topic, fe.Partition, fe.Err)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if id, ok := trackedID(r, project); ok {
				counts[id]++
			}
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		})
	}
	return counts, nil
}

// trackedID returns the event id of an EventTracked record of project.
func trackedID(r *kgo.Record, project string) (string, bool) {
	var id, typ string
	for _, h := range r.Headers {
		switch h.Key {
		case "event-id":
			id = string(h.Value)
		case "event-type":
			typ = string(h.Value)
		}
	}
	var env struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		ProjectID string `json:"projectId"`
	}
	if err := json.Unmarshal(r.Value, &env); err != nil {
		return "", false
	}
	if id == "" {
		id = env.ID
	}
	if typ == "" {
		typ = env.Type
	}
	if typ != trackedType || env.ProjectID != project || id == "" {
		return "", false
	}
	return id, true
}
