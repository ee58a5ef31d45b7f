package boost_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	boost "github.com/gamify/boost/sdk/go"
)

func Example() {
	c, err := boost.New(boost.Config{
		APIKey:   os.Getenv("BOOST_SECRET_KEY"), // from `go run ./cmd/boost dev`
		Endpoint: "http://localhost:3000",
		OnError: func(err error) {
			// Lost events, with their messageIds: log them, or mark them
			// in your own outbox.
			log.Printf("boost: %v (messageIds %v)", err, boost.MessageIDs(err))
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	_ = c.Identify(ctx, boost.Identify{UserID: "u1", AnonymousID: "a-42", Traits: map[string]any{"plan": "pro"}})
	_ = c.Track(ctx, boost.Event{Event: "level_completed", UserID: "u1", Properties: map[string]any{"level": 3}})

	// A purchase whose messageId is stored with the order, so that a
	// retried job sends the same id and the server keeps it once.
	orderMessageID := boost.NewMessageID()
	err = c.Purchase(ctx, boost.Purchase{
		UserID: "u1", OrderID: "o-1001", Amount: 1999, Currency: "EUR",
		Items:     []boost.Item{{ProductID: "sword", Quantity: 1, Price: 1999}},
		MessageID: orderMessageID,
	})
	var invalid *boost.ValidationError
	if errors.As(err, &invalid) {
		log.Printf("bad purchase: %v", invalid)
	}

	shutdown, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Close(shutdown); err != nil {
		log.Printf("some events were not delivered: %v", err)
	}
}
