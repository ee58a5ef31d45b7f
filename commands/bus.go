package commands

import (
	"context"
	"fmt"
	"reflect"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/domain"
)

// Bus sends commands to their handlers through Watermill. Send returns once
// the command is durably stored in JetStream, not once it is handled.
type Bus struct {
	cb    *cqrs.CommandBus
	pub   message.Publisher
	names bus.Names
}

// Command is anything with a Header that can validate itself.
type Command interface {
	Validate() error
	header() *Header
}

func (h *Header) header() *Header { return h }

// commandName is a command's Watermill name and the last token of its
// subject: the bare struct name, e.g. "CreateKey".
func commandName(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

func marshaler() cqrs.CommandEventMarshaler {
	return jsonMarshaler{cqrs.JSONMarshaler{GenerateName: commandName}}
}

// jsonMarshaler is Watermill's JSON marshaler but for two things: the
// message's uuid is the command's id, and the JSON is written without
// HTML escaping. Properties travel as raw JSON, which encoding/json would
// otherwise re-escape (every '<' six bytes): a command is then no bigger
// than the events it carries, so one that fits the API's limits fits
// NATS's message size too.
type jsonMarshaler struct{ cqrs.JSONMarshaler }

func (m jsonMarshaler) Marshal(v any) (*message.Message, error) {
	b, err := domain.Marshal(v)
	if err != nil {
		return nil, err
	}
	id := ""
	if c, ok := v.(Command); ok {
		id = c.header().CommandID
	}
	msg := message.NewMessage(id, b)
	msg.Metadata.Set("name", m.Name(v))
	return msg, nil
}

// Unmarshal reads a TrackEvents command in one pass when it can
// (decodeTrackEvents), and everything else as Watermill's marshaler does.
func (m jsonMarshaler) Unmarshal(msg *message.Message, v any) error {
	if c, ok := v.(*TrackEvents); ok {
		var fast TrackEvents
		if decodeTrackEvents(msg.Payload, &fast) {
			*c = fast
			return nil
		}
	}
	return m.JSONMarshaler.Unmarshal(msg, v)
}

// NewBus returns a command bus publishing through pub.
func NewBus(pub message.Publisher, names bus.Names, logger watermill.LoggerAdapter) (*Bus, error) {
	cb, err := cqrs.NewCommandBusWithConfig(pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return names.CommandSubject(p.CommandName), nil
		},
		Marshaler: marshaler(),
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("creating command bus: %w", err)
	}
	return &Bus{cb: cb, pub: pub, names: names}, nil
}

// Send validates cmd and stores it in JetStream. The command id becomes the
// message id, so sending the same command twice stores it once.
func (b *Bus) Send(ctx context.Context, cmd Command) error {
	if err := cmd.Validate(); err != nil {
		return err
	}
	id := cmd.header().CommandID
	return b.cb.SendWithModifiedMessage(ctx, cmd, func(m *message.Message) error {
		m.UUID = id
		return nil
	})
}

// SendBatch stores many commands with one round of JetStream acks, in the
// same wire format as Send. It returns once every command is stored.
func (b *Bus) SendBatch(ctx context.Context, cmds []Command) error {
	m := marshaler()
	byTopic := map[string][]*message.Message{}
	var topics []string
	for _, cmd := range cmds {
		if err := cmd.Validate(); err != nil {
			return err
		}
		msg, err := m.Marshal(cmd)
		if err != nil {
			return fmt.Errorf("marshalling %s: %w", commandName(cmd), err)
		}
		msg.UUID = cmd.header().CommandID
		msg.SetContext(ctx)
		topic := b.names.CommandSubject(commandName(cmd))
		if _, ok := byTopic[topic]; !ok {
			topics = append(topics, topic)
		}
		byTopic[topic] = append(byTopic[topic], msg)
	}
	for _, t := range topics {
		if err := b.pub.Publish(t, byTopic[t]...); err != nil {
			return err
		}
	}
	return nil
}
